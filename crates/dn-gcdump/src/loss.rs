//! Counting lost events: EventPipe numbers every event per capture thread, dropped events
//! included, and sequence points repeat each thread's last number; the heap events also number
//! their batches per stream (nodes, edges, root edges, CWT edges).

use rustc_hash::FxHashMap;

/// Gaps seen so far.
#[derive(Clone, Debug, Default)]
pub struct LossCounter {
    last: FxHashMap<u64, u32>,
    /// Events the runtime numbered but the stream does not hold.
    pub events_lost: u64,
}

impl LossCounter {
    /// One event of `thread` with number `seq`.
    pub fn event(&mut self, thread: u64, seq: u32) {
        if let Some(last) = self.last.insert(thread, seq) {
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            // A number that goes back is a new thread reusing an id, not a loss.
            if gap < u32::MAX / 2 {
                self.events_lost += u64::from(gap);
            }
        }
    }

    /// A sequence point: each thread's number of its last event written so far.
    pub fn sequence_point(&mut self, threads: &[(u64, u32)]) {
        for &(thread, seq) in threads {
            match self.last.get(&thread) {
                Some(&last) => {
                    let gap = seq.wrapping_sub(last);
                    if gap != 0 && gap < u32::MAX / 2 {
                        self.events_lost += u64::from(gap);
                        self.last.insert(thread, seq);
                    }
                }
                None => {
                    self.last.insert(thread, seq);
                }
            }
        }
    }
}

/// Batch numbering of one bulk stream: `Index` counts 0, 1, 2... per heap walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchCounter {
    next: u32,
    /// Batches skipped.
    pub missing: u64,
}

impl BatchCounter {
    pub fn batch(&mut self, index: u32) {
        if index > self.next {
            self.missing += u64::from(index - self.next);
        }
        self.next = index.saturating_add(1).max(self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_per_thread() {
        let mut l = LossCounter::default();
        l.event(1, 1);
        l.event(2, 7);
        l.event(1, 2);
        l.event(1, 5);
        l.event(2, 8);
        assert_eq!(l.events_lost, 2);
        l.sequence_point(&[(1, 5), (2, 10)]);
        assert_eq!(l.events_lost, 4);
        let mut b = BatchCounter::default();
        for i in [0, 1, 3, 4] {
            b.batch(i);
        }
        assert_eq!(b.missing, 1);
    }
}
