//! `--counters` names the target does not publish: after the first intervals, one warning per
//! missing provider or counter, with the closest names the target (or the runtime's known
//! counters) has, so a typo does not just show nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::known;
use crate::spec::ProviderSpec;

pub struct NameCheck {
    specs: Vec<ProviderSpec>,
    /// Names the target published, per provider (asked for or not).
    seen: BTreeMap<String, BTreeSet<String>>,
    deadline: Instant,
    done: bool,
}

impl NameCheck {
    /// Checks after three intervals and a margin (observable Meter instruments report from their
    /// second interval on).
    pub fn new(specs: &[ProviderSpec], refresh: Duration) -> Self {
        NameCheck {
            specs: specs.to_vec(),
            seen: BTreeMap::new(),
            deadline: Instant::now() + refresh * 3 + Duration::from_secs(2),
            done: false,
        }
    }

    pub fn observe(&mut self, provider: &str, name: &str) {
        if self.done {
            return;
        }
        match self.seen.get_mut(provider) {
            Some(set) => {
                if !set.contains(name) {
                    set.insert(name.to_string());
                }
            }
            None => {
                self.seen
                    .insert(provider.to_string(), BTreeSet::from([name.to_string()]));
            }
        }
    }

    /// The warnings, once, when the deadline has passed.
    pub fn due(&mut self) -> Vec<String> {
        if self.done || Instant::now() < self.deadline {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        for spec in self.specs.iter().filter(|s| !s.is_everything()) {
            let seen = self.seen.get(&spec.name);
            match (&spec.counters, seen) {
                (_, None) => {
                    let mut text = format!(
                        "provider {} published no counters so far (it may not exist in this process, or publish nothing yet)",
                        spec.name
                    );
                    let providers = known::PROVIDERS.iter().copied();
                    if let Some(m) = closest(&spec.name, providers.filter(|p| *p != spec.name)) {
                        text.push_str(&format!("; did you mean {m}?"));
                    }
                    out.push(text);
                }
                (Some(wanted), Some(seen)) => {
                    let known_names = known::KNOWN
                        .iter()
                        .filter(|c| c.provider == spec.name)
                        .map(|c| c.name);
                    let candidates: BTreeSet<&str> =
                        seen.iter().map(String::as_str).chain(known_names).collect();
                    for name in wanted.iter().filter(|n| !seen.contains(*n)) {
                        let mut text =
                            format!("counter {name} of {} was not published so far", spec.name);
                        match closest(name, candidates.iter().copied()) {
                            Some(m) => text.push_str(&format!("; did you mean {m}?")),
                            None => text.push_str(" (dn-counters list shows the runtime's names)"),
                        }
                        out.push(text);
                    }
                }
                (None, Some(_)) => {}
            }
        }
        out
    }
}

/// The candidate nearest to `name` by edit distance (case-insensitive), if it is near enough to
/// be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(name.chars().count()) / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        let c = ["gc-heap-size", "gen-0-size", "cpu-usage"];
        assert_eq!(closest("gc-heap-sise", c.into_iter()), Some("gc-heap-size"));
        assert_eq!(closest("GC-Heap-Size", c.into_iter()), Some("gc-heap-size"));
        assert_eq!(closest("something-else", c.into_iter()), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
