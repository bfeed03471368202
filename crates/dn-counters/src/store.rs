//! The latest value of every series, ordered for display: provider, then counter display name,
//! then tag set.

use std::collections::BTreeMap;

use crate::sample::{Sample, Source};

/// Identifies one series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub provider: String,
    pub display_name: String,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone)]
pub struct Store {
    series: BTreeMap<SeriesKey, Sample>,
    /// The value before the latest, per series (for `--showDeltas`).
    previous: BTreeMap<SeriesKey, f64>,
}

impl Store {
    pub fn update(&mut self, s: Sample) {
        let key = SeriesKey {
            provider: s.provider.clone(),
            display_name: s.display_name.clone(),
            tags: s.tags.clone(),
        };
        if let Some(old) = self.series.insert(key.clone(), s) {
            self.previous.insert(key, old.value);
        }
    }

    /// The change from the value before the latest one; `None` until a series has two values.
    pub fn delta(&self, key: &SeriesKey) -> Option<f64> {
        Some(self.series.get(key)?.value - self.previous.get(key)?)
    }

    pub fn drop_event_counters(&mut self, provider: &str) {
        self.series
            .retain(|k, s| !(k.provider == provider && s.source == Source::EventCounters));
        let series = &self.series;
        self.previous.retain(|k, _| series.contains_key(k));
    }

    /// Takes in what the event loop hands over: the EventCounters rows of providers that
    /// switched to their Meter go, then the new values.
    pub fn apply(
        &mut self,
        switched_to_meter: &[String],
        samples: impl IntoIterator<Item = Sample>,
    ) {
        for p in switched_to_meter {
            self.drop_event_counters(p);
        }
        for s in samples {
            self.update(s);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Sample)> {
        self.series.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
