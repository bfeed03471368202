//! How values are shown: human-readable byte sizes and grouped digits by default, the exact
//! number with `--raw`.

use crate::sample::Sample;

/// Bytes per unit for units that measure memory; `MB` is how EventCounters report megabytes.
pub fn bytes_per_unit(unit: &str) -> Option<f64> {
    match unit {
        "By" | "B" | "bytes" => Some(1.0),
        "KB" => Some(1e3),
        "MB" => Some(1e6),
        "GB" => Some(1e9),
        _ => None,
    }
}

pub fn format_value(s: &Sample, raw: bool) -> String {
    if raw {
        return exact(s.value);
    }
    match bytes_per_unit(&s.unit) {
        Some(scale) => human_bytes(s.value * scale),
        None => grouped(s.value),
    }
}

/// Every digit the runtime sent, nothing added.
pub fn exact(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// `512 B`, `1.50 KiB`, `45.23 MiB`, `2.00 GiB`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b.abs() < 1024.0 {
        return format!("{} B", grouped(b.round()));
    }
    let mut v = b / 1024.0;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", UNITS[i])
}

/// Group separators and at most three decimals: `1,234,567.891`.
pub fn grouped(v: f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0;
    let text = format!("{:.3}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(grouped(1234567.891), "1,234,567.891");
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(-1500.5), "-1,500.5");
        assert_eq!(grouped(12.0), "12");
        assert_eq!(exact(40.742912), "40.742912");
        assert_eq!(exact(45234176.0), "45234176");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.50 KiB");
        assert_eq!(human_bytes(45.0 * 1024.0 * 1024.0), "45.00 MiB");
    }
}
