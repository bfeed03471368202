//! The `Trace` object: the clock and process facts every event timestamp is relative to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cursor::Cursor;
use crate::error::ParseError;

/// Win32 SYSTEMTIME as written in the Trace object (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyncTime {
    pub year: u16,
    pub month: u16,
    pub day_of_week: u16,
    pub day: u16,
    pub hour: u16,
    pub minute: u16,
    pub second: u16,
    pub milliseconds: u16,
}

impl SyncTime {
    /// The same instant as a `SystemTime`; `None` for dates before 1970 or out of range fields.
    pub fn to_system_time(&self) -> Option<SystemTime> {
        if !(1..=12).contains(&self.month) || !(1..=31).contains(&self.day) {
            return None;
        }
        let days = days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        );
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        let secs = u64::try_from(secs).ok()?;
        Some(
            UNIX_EPOCH
                + Duration::from_secs(secs)
                + Duration::from_millis(u64::from(self.milliseconds)),
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Facts from the stream's `Trace` object, available once it has been parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TraceInfo {
    /// Wall-clock time (UTC) at which the session was opened.
    pub sync_time_utc: SyncTime,
    /// Timestamp (same clock as event timestamps) taken at `sync_time_utc`.
    pub sync_time_qpc: i64,
    /// Timestamp ticks per second (1 000 000 000 on Linux).
    pub qpc_frequency: i64,
    pub pointer_size: u32,
    pub process_id: u32,
    pub cpu_count: u32,
    /// Sample-profiler interval in nanoseconds.
    pub expected_cpu_sampling_rate: u32,
    /// Version of the Trace object (3 or 4).
    pub format_version: i32,
}

pub(crate) const TRACE_DATA_LEN: usize = 48;

impl TraceInfo {
    pub(crate) fn parse(c: &mut Cursor, format_version: i32) -> Result<Self, ParseError> {
        let mut st = [0u16; 8];
        for v in &mut st {
            *v = c.u16("trace sync time")?;
        }
        let sync_time_qpc = c.i64("trace sync time")?;
        let freq_offset = c.offset();
        let qpc_frequency = c.i64("trace QPC frequency")?;
        if qpc_frequency <= 0 {
            return Err(ParseError::new(
                freq_offset,
                crate::error::ErrorKind::Malformed("QPC frequency is not positive"),
            ));
        }
        Ok(TraceInfo {
            sync_time_utc: SyncTime {
                year: st[0],
                month: st[1],
                day_of_week: st[2],
                day: st[3],
                hour: st[4],
                minute: st[5],
                second: st[6],
                milliseconds: st[7],
            },
            sync_time_qpc,
            qpc_frequency,
            pointer_size: c.u32("trace pointer size")?,
            process_id: c.u32("trace process id")?,
            cpu_count: c.u32("trace cpu count")?,
            expected_cpu_sampling_rate: c.u32("trace sampling rate")?,
            format_version,
        })
    }

    /// Milliseconds between the session start (sync time) and `timestamp`, as TraceEvent's
    /// `TimeStampRelativeMSec` computes it; negative for events stamped before the sync time.
    pub fn relative_msec(&self, timestamp: i64) -> f64 {
        (timestamp.wrapping_sub(self.sync_time_qpc)) as f64 * 1000.0 / self.qpc_frequency as f64
    }

    /// Time since the session start (zero for events stamped before it).
    pub fn time_since_start(&self, timestamp: i64) -> Duration {
        let ticks = timestamp.saturating_sub(self.sync_time_qpc).max(0) as u128;
        let nanos = ticks * 1_000_000_000 / self.qpc_frequency as u128;
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    }

    /// Wall-clock time of `timestamp`: sync time + (timestamp − sync QPC) / frequency.
    pub fn wall_clock(&self, timestamp: i64) -> Option<SystemTime> {
        let start = self.sync_time_utc.to_system_time()?;
        let delta = timestamp.checked_sub(self.sync_time_qpc)?;
        let nanos = (delta.unsigned_abs() as u128) * 1_000_000_000 / self.qpc_frequency as u128;
        let d = Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        );
        if delta >= 0 {
            start.checked_add(d)
        } else {
            start.checked_sub(d)
        }
    }
}
