//! `list`: the counters a runtime publishes without any app code, per runtime version.

use serde::Serialize;

use crate::sample::{Kind, Source};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct KnownCounter {
    pub provider: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    /// As the runtime declares it: an EventCounter's payload (`Mean` = gauge, `Sum` = rate), a
    /// Meter's instrument type (the event it is published with).
    pub kind: Kind,
    pub source: Source,
    /// First runtime major version that has it (3 = .NET Core 3.x).
    pub since: u32,
    /// Last runtime major version that publishes it so (a later one changed its kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u32>,
}

/// The runtime versions `list -r` knows (and the tests run).
pub const RUNTIMES: &[(&str, u32)] = &[("3.1", 3), ("8", 8), ("9", 9), ("10", 10), ("11", 11)];

/// `3.1`, `8`, `8.0`, `10.0.12`... to a major version `list` knows.
pub fn parse_runtime(v: &str) -> Option<u32> {
    let mut parts = v.trim().split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    match (major, minor) {
        (3, 1) => Some(3),
        (3, _) => None,
        (m, 0) if RUNTIMES.iter().any(|(_, k)| *k == m) => Some(m),
        _ => None,
    }
}

const fn ec(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
    since: u32,
) -> KnownCounter {
    KnownCounter {
        provider: "System.Runtime",
        name,
        description,
        unit,
        kind,
        source: Source::EventCounters,
        since,
        until: None,
    }
}

const fn meter(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
) -> KnownCounter {
    KnownCounter {
        provider: "System.Runtime",
        name,
        description,
        unit,
        kind,
        source: Source::Meter,
        since: 9,
        until: None,
    }
}

/// A Meter instrument whose kind changed: `kind` on 9..=`until`, `then` from the next version.
const fn changed(m: KnownCounter, until: u32, then: Kind) -> [KnownCounter; 2] {
    let mut old = m;
    old.until = Some(until);
    let mut new = m;
    new.kind = then;
    new.since = until + 1;
    [old, new]
}

/// System.Runtime EventCounters (3.1: 19; 5: +4; 6: +2; 8: +2) and the .NET 9+ System.Runtime Meter.
/// ObservableCounters in .NET 9 and 10, ObservableUpDownCounters from .NET 11.
const THREAD_COUNT: [KnownCounter; 2] = changed(
    meter(
        "dotnet.thread_pool.thread.count",
        "Thread pool threads",
        "{thread}",
        C,
    ),
    10,
    U,
);
const QUEUE_LENGTH: [KnownCounter; 2] = changed(
    meter(
        "dotnet.thread_pool.queue.length",
        "Work items queued to the thread pool",
        "{work_item}",
        C,
    ),
    10,
    U,
);

const G: Kind = Kind::Gauge;
const R: Kind = Kind::Rate;
const C: Kind = Kind::Counter;
const U: Kind = Kind::UpDownCounter;

#[rustfmt::skip]
pub const KNOWN: &[KnownCounter] = &[
    ec("cpu-usage", "CPU Usage", "%", G, 3),
    ec("working-set", "Working Set", "MB", G, 3),
    ec("gc-heap-size", "GC Heap Size", "MB", G, 3),
    ec("gen-0-gc-count", "Gen 0 GC Count", "", R, 3),
    ec("gen-1-gc-count", "Gen 1 GC Count", "", R, 3),
    ec("gen-2-gc-count", "Gen 2 GC Count", "", R, 3),
    ec("time-in-gc", "% Time in GC since last GC", "%", G, 3),
    ec("gen-0-size", "Gen 0 Size", "B", G, 3),
    ec("gen-1-size", "Gen 1 Size", "B", G, 3),
    ec("gen-2-size", "Gen 2 Size", "B", G, 3),
    ec("loh-size", "LOH Size", "B", G, 3),
    ec("alloc-rate", "Allocation Rate", "B", R, 3),
    ec("assembly-count", "Number of Assemblies Loaded", "", G, 3),
    ec("exception-count", "Exception Count", "", R, 3),
    ec("threadpool-thread-count", "ThreadPool Thread Count", "", G, 3),
    ec("monitor-lock-contention-count", "Monitor Lock Contention Count", "", R, 3),
    ec("threadpool-queue-length", "ThreadPool Queue Length", "", G, 3),
    ec("threadpool-completed-items-count", "ThreadPool Completed Work Item Count", "", R, 3),
    ec("active-timer-count", "Number of Active Timers", "", G, 3),
    ec("poh-size", "POH (Pinned Object Heap) Size", "B", G, 5),
    ec("gc-fragmentation", "GC Fragmentation", "%", G, 5),
    ec("il-bytes-jitted", "IL Bytes Jitted", "B", G, 5),
    ec("methods-jitted-count", "Number of Methods Jitted", "", G, 5),
    ec("gc-committed", "GC Committed Bytes", "MB", G, 6),
    ec("time-in-jit", "Time spent in JIT", "ms", R, 6),
    ec("total-pause-time-by-gc", "Time paused by GC", "ms", R, 8),
    ec("gen-0-gc-budget", "Gen 0 GC Budget", "MB", G, 8),
    meter("dotnet.gc.collections", "GC collections since process start, per generation (gc.heap.generation)", "{collection}", C),
    meter("dotnet.process.memory.working_set", "Working set of the process", "By", U),
    meter("dotnet.gc.heap.total_allocated", "Bytes allocated on the GC heap since process start", "By", C),
    meter("dotnet.gc.last_collection.memory.committed_size", "Committed GC memory after the last collection", "By", U),
    meter("dotnet.gc.last_collection.heap.size", "GC heap size after the last collection, per generation", "By", U),
    meter("dotnet.gc.last_collection.heap.fragmentation.size", "Heap fragmentation after the last collection, per generation", "By", U),
    meter("dotnet.gc.pause.time", "Time paused in GC since process start", "s", C),
    meter("dotnet.jit.compiled_il.size", "IL bytes compiled by the JIT", "By", C),
    meter("dotnet.jit.compiled_methods", "Methods compiled by the JIT", "{method}", C),
    meter("dotnet.jit.compilation.time", "Time spent in the JIT", "s", C),
    meter("dotnet.monitor.lock_contentions", "Monitor lock contentions", "{contention}", C),
    THREAD_COUNT[0], THREAD_COUNT[1],
    meter("dotnet.thread_pool.work_item.count", "Work items completed by the thread pool", "{work_item}", C),
    QUEUE_LENGTH[0], QUEUE_LENGTH[1],
    meter("dotnet.timer.count", "Active timers", "{timer}", U),
    meter("dotnet.assembly.count", "Loaded assemblies", "{assembly}", U),
    meter("dotnet.exceptions", "Exceptions thrown, per type (error.type)", "{exception}", C),
    meter("dotnet.process.cpu.count", "Processors available to the process", "{cpu}", U),
    meter("dotnet.process.cpu.time", "CPU time used, per mode (cpu.mode)", "s", C),
];

/// Providers of counters that come with .NET (EventSources and Meters), for name suggestions.
pub const PROVIDERS: &[&str] = &[
    "System.Runtime",
    "Microsoft.AspNetCore.Hosting",
    "Microsoft.AspNetCore.Http.Connections",
    "Microsoft-AspNetCore-Server-Kestrel",
    "Microsoft.AspNetCore.Server.Kestrel",
    "Microsoft.AspNetCore.Routing",
    "Microsoft.AspNetCore.Diagnostics",
    "Microsoft.AspNetCore.RateLimiting",
    "System.Net.Http",
    "System.Net.NameResolution",
    "System.Net.Security",
    "System.Net.Sockets",
    "Grpc.AspNetCore.Server",
    "Grpc.Net.Client",
];

/// EventSources of .NET and ASP.NET Core that publish EventCounters: what `--counters '*'` enables
/// (EventPipe has no "every EventSource" provider).
pub const EVENT_COUNTER_PROVIDERS: &[&str] = &[
    "System.Runtime",
    "Microsoft.AspNetCore.Hosting",
    "Microsoft.AspNetCore.Http.Connections",
    "Microsoft-AspNetCore-Server-Kestrel",
    "System.Net.Http",
    "System.Net.NameResolution",
    "System.Net.Security",
    "System.Net.Sockets",
    "Grpc.AspNetCore.Server",
    "Grpc.Net.Client",
];

/// The counters a runtime of `major` version publishes (every version when `None`).
pub fn for_runtime(major: Option<u32>) -> Vec<&'static KnownCounter> {
    KNOWN
        .iter()
        .filter(|c| major.is_none_or(|m| c.since <= m.max(3) && c.until.is_none_or(|u| m <= u)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_version_match_the_runtimes() {
        let ec = |m| {
            for_runtime(Some(m))
                .iter()
                .filter(|c| c.source == Source::EventCounters)
                .count()
        };
        assert_eq!(ec(3), 19);
        assert_eq!(ec(8), 27);
        assert_eq!(ec(10), 27);
        let meters = |m| {
            for_runtime(Some(m))
                .iter()
                .filter(|c| c.source == Source::Meter)
                .count()
        };
        assert_eq!(meters(8), 0);
        assert_eq!(meters(9), 19);
    }

    #[test]
    fn runtime_versions() {
        assert_eq!(parse_runtime("3.1"), Some(3));
        assert_eq!(parse_runtime("8"), Some(8));
        assert_eq!(parse_runtime("10.0"), Some(10));
        assert_eq!(parse_runtime("11"), Some(11));
        for bad in ["7", "3.0", "5", "abc", "", "8.1"] {
            assert_eq!(parse_runtime(bad), None, "{bad}");
        }
    }
}
