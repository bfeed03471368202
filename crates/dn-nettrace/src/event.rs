//! One parsed event.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::decode::decode_payload;
use crate::error::DecodeError;
use crate::metadata::EventMetadata;
use crate::payload::Payload;
use crate::trace_info::TraceInfo;
use crate::value::{Guid, Value};

/// An event from an EventBlock, with its header fields resolved.
#[derive(Debug, Clone)]
pub struct Event {
    /// What the event is (shared by all events with the same metadata id).
    pub metadata: Arc<EventMetadata>,
    /// The stream's Trace object (a copy: cheaper than sharing), for time conversions.
    pub trace: TraceInfo,
    /// Timestamp in QPC ticks (see [`TraceInfo::qpc_frequency`]).
    pub timestamp: i64,
    /// Thread the event is about (the sampled thread for sample-profiler events).
    pub thread_id: u64,
    /// Thread whose buffer held the event; sequence numbers count per capture thread.
    pub capture_thread_id: u64,
    /// Processor number (the runtime writes 0xFFFFFFFF).
    pub processor: u32,
    /// Per-capture-thread sequence number; gaps mean dropped events.
    pub sequence: u32,
    /// Stack id; only valid until the next sequence point.
    pub stack_id: u32,
    pub activity_id: Guid,
    pub related_activity_id: Guid,
    /// The writer marked this event sorted: no later event has an earlier timestamp.
    pub is_sorted: bool,
    /// Raw payload bytes (dereferences to `&[u8]`).
    pub payload: Payload,
}

impl Event {
    // The accessors shared with the borrowed view are defined once, on `EventRef`.
    pub fn provider_name(&self) -> &str {
        self.as_ref().provider_name()
    }

    pub fn event_id(&self) -> u32 {
        self.as_ref().event_id()
    }

    /// Name from the metadata ("" for native runtime events).
    pub fn event_name(&self) -> &str {
        self.as_ref().event_name()
    }

    /// Decodes the payload by the metadata's field list into named values. Events whose
    /// metadata carries no fields (native runtime events) decode to an empty list.
    pub fn decode(&self) -> Result<Vec<(String, Value)>, DecodeError> {
        self.as_ref().decode()
    }

    /// For an `EventCounters` event: the fields of its `Payload` object (Name, DisplayName,
    /// Mean or Increment, IntervalSec, Series, CounterType, DisplayUnits, ...). `Ok(None)` when
    /// the event is not shaped like an EventCounters event.
    pub fn counter_payload(&self) -> Result<Option<Vec<(String, Value)>>, DecodeError> {
        if self.metadata.event_name != "EventCounters" {
            return Ok(None);
        }
        let mut fields = self.decode()?;
        if fields.len() != 1 {
            return Ok(None);
        }
        match fields.pop().map(|(_, v)| v) {
            Some(Value::Object(mut inner)) => {
                match inner.iter().position(|(n, _)| n == "Payload") {
                    Some(i) => match inner.swap_remove(i).1 {
                        Value::Object(payload) => Ok(Some(payload)),
                        _ => Ok(None),
                    },
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// Milliseconds since the session start, as TraceEvent's `TimeStampRelativeMSec`.
    pub fn relative_msec(&self) -> f64 {
        self.as_ref().relative_msec()
    }

    pub fn time_since_start(&self) -> Duration {
        self.trace.time_since_start(self.timestamp)
    }

    /// Wall-clock time (UTC) of the event.
    pub fn wall_clock(&self) -> Option<SystemTime> {
        self.trace.wall_clock(self.timestamp)
    }
}

/// A borrowed view of an event, handed to callbacks by [`NettraceParser::feed_each`] and
/// [`EventReader::for_each_event`] without allocating. Valid only during the callback; use
/// [`to_event`](Self::to_event) to keep it.
///
/// [`NettraceParser::feed_each`]: crate::NettraceParser::feed_each
/// [`EventReader::for_each_event`]: crate::EventReader::for_each_event
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub metadata: &'a Arc<EventMetadata>,
    pub trace: &'a TraceInfo,
    pub timestamp: i64,
    pub thread_id: u64,
    pub capture_thread_id: u64,
    pub processor: u32,
    pub sequence: u32,
    pub stack_id: u32,
    pub activity_id: Guid,
    pub related_activity_id: Guid,
    pub is_sorted: bool,
    pub payload: &'a [u8],
}

impl<'a> EventRef<'a> {
    pub fn provider_name(&self) -> &'a str {
        &self.metadata.provider_name
    }

    pub fn event_id(&self) -> u32 {
        self.metadata.event_id
    }

    pub fn event_name(&self) -> &'a str {
        &self.metadata.event_name
    }

    /// See [`Event::decode`].
    pub fn decode(&self) -> Result<Vec<(String, Value)>, DecodeError> {
        decode_payload(&self.metadata.fields, self.payload)
    }

    pub fn relative_msec(&self) -> f64 {
        self.trace.relative_msec(self.timestamp)
    }

    /// An owned copy.
    #[inline]
    pub fn to_event(&self) -> Event {
        self.owned_with(Payload::copy_from(self.payload))
    }

    /// An owned copy carrying `payload` (the same bytes, possibly shared with other events).
    #[inline(always)]
    pub(crate) fn owned_with(&self, payload: Payload) -> Event {
        Event {
            metadata: self.metadata.clone(),
            trace: *self.trace,
            timestamp: self.timestamp,
            thread_id: self.thread_id,
            capture_thread_id: self.capture_thread_id,
            processor: self.processor,
            sequence: self.sequence,
            stack_id: self.stack_id,
            activity_id: self.activity_id,
            related_activity_id: self.related_activity_id,
            is_sorted: self.is_sorted,
            payload,
        }
    }
}

impl Event {
    /// A borrowed view of this event.
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            metadata: &self.metadata,
            trace: &self.trace,
            timestamp: self.timestamp,
            thread_id: self.thread_id,
            capture_thread_id: self.capture_thread_id,
            processor: self.processor,
            sequence: self.sequence,
            stack_id: self.stack_id,
            activity_id: self.activity_id,
            related_activity_id: self.related_activity_id,
            is_sorted: self.is_sorted,
            payload: &self.payload,
        }
    }
}
