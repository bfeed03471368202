//! When a provider publishes both a Meter and EventCounters (ASP.NET Core, System.Runtime on
//! .NET 9+), show the Meter, as dotnet-counters does. EventCounters of a provider that may have a
//! Meter are held back until the first Metrics interval ends: if no Meter value came by then,
//! the EventCounters are shown; if one comes later, the Meter takes over.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::sample::{Sample, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Undecided,
    EventCounters,
    Meter,
}

pub struct Preference {
    choice: HashMap<String, Choice>,
    held: Vec<Sample>,
    /// Decide for EventCounters after this long without a Metrics interval (a session that
    /// never reports must not hide everything).
    deadline: Instant,
}

/// What to do with the samples seen so far.
#[derive(Debug, Default)]
pub struct Verdict {
    pub emit: Vec<Sample>,
    /// Providers that switched to their Meter: drop their EventCounters rows.
    pub switched_to_meter: Vec<String>,
}

impl Preference {
    /// `meter_providers`: those for which a Meter was requested.
    pub fn new(meter_providers: &[String], refresh: Duration) -> Self {
        Preference {
            choice: meter_providers
                .iter()
                .map(|p| (p.clone(), Choice::Undecided))
                .collect(),
            held: Vec::new(),
            deadline: Instant::now() + refresh * 2 + Duration::from_secs(1),
        }
    }

    pub fn samples(&mut self, samples: Vec<Sample>) -> Verdict {
        let mut v = Verdict::default();
        let meters: HashSet<String> = samples
            .iter()
            .filter(|s| s.source == Source::Meter)
            .map(|s| s.provider.clone())
            .collect();
        for p in meters {
            // Only providers asked for whole have a choice to make; named counters come from
            // whichever mechanism publishes them.
            let Some(choice) = self.choice.get_mut(&p) else {
                continue;
            };
            if *choice != Choice::Meter {
                *choice = Choice::Meter;
                self.held.retain(|s| s.provider != p);
                v.switched_to_meter.push(p);
            }
        }
        for s in samples {
            let choice = self
                .choice
                .get(&s.provider)
                .copied()
                .unwrap_or(Choice::EventCounters);
            match (s.source, choice) {
                (Source::Meter, _) => v.emit.push(s),
                (Source::EventCounters, Choice::EventCounters) => v.emit.push(s),
                (Source::EventCounters, Choice::Undecided) => self.held.push(s),
                (Source::EventCounters, Choice::Meter) => {}
            }
        }
        if Instant::now() >= self.deadline {
            v.emit.extend(self.decide());
        }
        v
    }

    /// Called when nothing arrived for a while: releases held samples once the deadline passed.
    pub fn tick(&mut self) -> Vec<Sample> {
        if !self.held.is_empty() && Instant::now() >= self.deadline {
            self.decide()
        } else {
            Vec::new()
        }
    }

    /// A Metrics interval ended: providers without Meter values use their EventCounters.
    pub fn interval_end(&mut self) -> Vec<Sample> {
        self.decide()
    }

    fn decide(&mut self) -> Vec<Sample> {
        for c in self.choice.values_mut() {
            if *c == Choice::Undecided {
                *c = Choice::EventCounters;
            }
        }
        std::mem::take(&mut self.held)
    }
}
