//! `list` and `ps`.

use anyhow::{Context, Result};

use crate::args::{ListArgs, PsArgs};

pub fn list(a: &ListArgs) -> Result<()> {
    let major = match &a.runtime_version {
        None => None,
        Some(v) => Some(
            v.split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .with_context(|| format!("'{v}' is not a runtime version (e.g. 8, 9.0, 10)"))?,
        ),
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
            c.source.to_string(),
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
