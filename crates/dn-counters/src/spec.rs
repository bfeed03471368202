//! The `--counters` grammar, as dotnet-counters reads it: a comma-separated list of providers,
//! each `Name` (all its counters), `Name[c1,c2]` (only those), optionally prefixed with
//! `EventCounters\` to force the EventSource counters over a Meter of the same name.

use std::collections::BTreeSet;

/// Which counters of one provider to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    pub name: String,
    /// `None` = every counter of the provider.
    pub counters: Option<BTreeSet<String>>,
    /// `EventCounters\Name`: only the EventSource's counters, never a Meter's instruments.
    pub event_counters_only: bool,
}

impl ProviderSpec {
    pub fn all(name: &str) -> Self {
        ProviderSpec {
            name: name.to_string(),
            counters: None,
            event_counters_only: false,
        }
    }

    /// `*`: every provider the runtime and its libraries publish.
    pub fn is_everything(&self) -> bool {
        self.name == EVERYTHING
    }

    /// True when `counter` of this provider was asked for.
    pub fn wants(&self, counter: &str) -> bool {
        self.counters.as_ref().is_none_or(|c| c.contains(counter))
    }
}

/// The provider monitored when `--counters` is not given.
pub const DEFAULT_PROVIDER: &str = "System.Runtime";

const EVENT_COUNTERS_PREFIX: &str = "EventCounters\\";

/// `--counters '*'`: every counter of every provider.
pub const EVERYTHING: &str = "*";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Error parsing --counters argument: {0}")]
pub struct SpecError(String);

/// Parses a `--counters` value.
pub fn parse_counters(text: &str) -> Result<Vec<ProviderSpec>, SpecError> {
    let mut specs: Vec<ProviderSpec> = Vec::new();
    for item in split_top_level(text) {
        let spec = parse_provider(item.trim_start())?;
        match specs.iter_mut().find(|s| s.name == spec.name) {
            Some(existing) => {
                if existing.event_counters_only != spec.event_counters_only {
                    return Err(SpecError(format!(
                        "{} is named both as a Meter and as EventCounters\\{}",
                        spec.name, spec.name
                    )));
                }
                existing.counters = match (existing.counters.take(), spec.counters) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
            }
            None => specs.push(spec),
        }
    }
    Ok(specs)
}

/// Splits on commas that are not inside `[...]`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

fn parse_provider(item: &str) -> Result<ProviderSpec, SpecError> {
    let (event_counters_only, rest) = match item.strip_prefix(EVENT_COUNTERS_PREFIX) {
        Some(r) => (true, r),
        None => (false, item),
    };
    let (name, counters) = match rest.find('[') {
        None => {
            if rest.contains(']') {
                return Err(SpecError(format!(
                    "Unexpected characters after closing ']' in counter_provider {item}"
                )));
            }
            (rest.trim(), None)
        }
        Some(open) => {
            let close = rest.rfind(']').ok_or_else(|| {
                SpecError(format!(
                    "Expected to find closing ']' in counter_provider {item}"
                ))
            })?;
            if rest[open + 1..].contains('[') {
                return Err(SpecError(format!(
                    "Expected at most one '[' in counter_provider {item}"
                )));
            }
            if close + 1 != rest.len() {
                return Err(SpecError(format!(
                    "Unexpected characters after closing ']' in counter_provider {item}"
                )));
            }
            let names: BTreeSet<String> = rest[open + 1..close]
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            (rest[..open].trim(), Some(names))
        }
    };
    if name.is_empty() {
        return Err(SpecError("Expected non-empty counter_provider".into()));
    }
    if name == EVERYTHING && (counters.is_some() || event_counters_only) {
        return Err(SpecError(format!(
            "'*' means every counter of every provider and takes no prefix or counter list: {item}"
        )));
    }
    Ok(ProviderSpec {
        name: name.to_string(),
        counters,
        event_counters_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> Option<BTreeSet<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses_every_form() {
        let s = parse_counters(
            "System.Runtime[cpu-usage,working-set], Microsoft.AspNetCore.Hosting,EventCounters\\System.Net.Http",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "System.Runtime");
        assert_eq!(s[0].counters, set(&["cpu-usage", "working-set"]));
        assert!(!s[0].event_counters_only);
        assert_eq!(s[1], ProviderSpec::all("Microsoft.AspNetCore.Hosting"));
        assert_eq!(s[2].name, "System.Net.Http");
        assert!(s[2].event_counters_only);
        assert!(s[0].wants("cpu-usage") && !s[0].wants("gc-heap-size"));
    }

    #[test]
    fn duplicates_are_merged_and_all_wins() {
        let s = parse_counters("A[x],A[y]").unwrap();
        assert_eq!(
            s,
            vec![ProviderSpec {
                counters: set(&["x", "y"]),
                ..ProviderSpec::all("A")
            }]
        );
        let s = parse_counters("A[x],A").unwrap();
        assert_eq!(s, vec![ProviderSpec::all("A")]);
        assert!(parse_counters("A,EventCounters\\A").is_err());
    }

    #[test]
    fn errors_match_dotnet_counters() {
        let msg = |t: &str| parse_counters(t).unwrap_err().to_string();
        assert!(msg("").contains("Expected non-empty counter_provider"));
        assert!(msg("A,,B").contains("Expected non-empty counter_provider"));
        assert!(msg("A[x").contains("closing ']'"));
        assert!(msg("A[x][y]").contains("at most one '['"));
        assert!(msg("A[x]y").contains("after closing ']'"));
        assert!(msg("").starts_with("Error parsing --counters argument: "));
        assert!(msg("*[a]").contains("takes no"));
        assert!(parse_counters("*").unwrap()[0].is_everything());
    }
}
