//! `list` and `ps`.

use anyhow::{Context, Result};

use crate::args::{ListArgs, PsArgs};

pub fn list(a: &ListArgs) -> Result<()> {
    let major = match &a.runtime_version {
        None => None,
        Some(v) => Some(crate::known::parse_runtime(v).with_context(|| {
            let known: Vec<&str> = crate::known::RUNTIMES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown runtime version '{v}': dn-counters lists the counters of {}",
                known.join(", ")
            )
        })?),
    };
    let rows = crate::known::for_runtime(major);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    use dn_core::render::{Align, Table};
    let mut t = Table::new()
        .column("PROVIDER", Align::Left, false)
        .column("SOURCE", Align::Left, false)
        .column("NAME", Align::Left, false)
        .column("UNIT", Align::Left, false)
        .column("KIND", Align::Left, false)
        .column("SINCE", Align::Right, false)
        .column("DESCRIPTION", Align::Left, true);
    for c in rows {
        t.row(vec![
            c.provider.to_string(),
            c.source.as_str().to_string(),
            c.name.to_string(),
            c.unit.to_string(),
            c.kind.to_string(),
            if c.since <= 3 {
                "3.0".into()
            } else {
                format!("{}.0", c.since)
            },
            c.description.to_string(),
        ]);
    }
    print!("{}", t.render(dn_core::render::output_width()));
    Ok(())
}

pub fn ps(a: &PsArgs) -> Result<()> {
    let rows = dn_core::ps::list_processes();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    // The same listing as dn-ps.
    print!(
        "{}",
        dn_core::ps::render_listing(&rows, dn_core::render::output_width())
    );
    Ok(())
}
