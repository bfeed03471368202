//! Microsoft's dotnet-dump (installed as a .NET tool by the harness) as an oracle.

use std::collections::BTreeMap;
use std::path::Path;

use super::Stats;

/// Runs dotnet-dump's `analyze` with `commands` on `core`; returns its stdout.
pub fn dotnet_dump(core: &Path, commands: &[String]) -> String {
    dn_testkit::dotnet_dump_analyze(core, commands)
}

/// SOS's statistics table as (count, size) per MethodTable, and its total line.
pub fn sos_stats(text: &str) -> (Stats, (u64, u64)) {
    let num = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let total = text.lines().find_map(|line| {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Total", n, "objects,", b, "bytes"] => Some((num(n)?, num(b)?)),
            _ => None,
        }
    });
    (sos_rows(text), total.expect("dotnet-dump printed no total"))
}

/// The rows of SOS's statistics table: (count, size) per MethodTable.
pub fn sos_rows(text: &str) -> Stats {
    let num = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let mut stats = BTreeMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 4 && w[0].len() >= 8 && w[0].chars().all(|c| c.is_ascii_hexdigit()) {
            if let (Some(c), Some(s)) = (num(w[1]), num(w[2])) {
                stats.insert(u64::from_str_radix(w[0], 16).unwrap(), (c, s));
            }
        }
    }
    stats
}
