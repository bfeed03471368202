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
    /// Bumped whenever a series is added or removed (the screen re-lays out then).
    pub shape_version: u64,
}

impl Store {
    pub fn update(&mut self, s: Sample) {
        let key = SeriesKey {
            provider: s.provider.clone(),
            display_name: s.display_name.clone(),
            tags: s.tags.clone(),
        };
        if self.series.insert(key, s).is_none() {
            self.shape_version += 1;
        }
    }

    pub fn drop_event_counters(&mut self, provider: &str) {
        let before = self.series.len();
        self.series
            .retain(|k, s| !(k.provider == provider && s.source == Source::EventCounters));
        if self.series.len() != before {
            self.shape_version += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Sample)> {
        self.series.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }
}
