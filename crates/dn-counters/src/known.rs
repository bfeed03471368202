//! `list`: the counters a runtime publishes without any app code, per runtime version.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KnownCounter {
    pub provider: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    /// `gauge`, `rate` (EventCounters), or the Meter instrument kind.
    pub kind: &'static str,
    /// `EventCounters` or `Meter`.
    pub source: &'static str,
    /// First runtime major version that has it (3 = .NET Core 3.x).
    pub since: u32,
}

const fn ec(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: &'static str,
    since: u32,
) -> KnownCounter {
    KnownCounter {
        provider: "System.Runtime",
        name,
        description,
        unit,
        kind,
        source: "EventCounters",
        since,
    }
}

const fn meter(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: &'static str,
) -> KnownCounter {
    KnownCounter {
        provider: "System.Runtime",
        name,
        description,
        unit,
        kind,
        source: "Meter",
        since: 9,
    }
}

/// System.Runtime EventCounters (3.1: 19; 5: +4; 6: +2; 8: +2) and the .NET 9+ System.Runtime Meter.
#[rustfmt::skip]
pub const KNOWN: &[KnownCounter] = &[
    ec("cpu-usage", "CPU Usage", "%", "gauge", 3),
    ec("working-set", "Working Set", "MB", "gauge", 3),
    ec("gc-heap-size", "GC Heap Size", "MB", "gauge", 3),
    ec("gen-0-gc-count", "Gen 0 GC Count", "", "rate", 3),
    ec("gen-1-gc-count", "Gen 1 GC Count", "", "rate", 3),
    ec("gen-2-gc-count", "Gen 2 GC Count", "", "rate", 3),
    ec("time-in-gc", "% Time in GC since last GC", "%", "gauge", 3),
    ec("gen-0-size", "Gen 0 Size", "B", "gauge", 3),
    ec("gen-1-size", "Gen 1 Size", "B", "gauge", 3),
    ec("gen-2-size", "Gen 2 Size", "B", "gauge", 3),
    ec("loh-size", "LOH Size", "B", "gauge", 3),
    ec("alloc-rate", "Allocation Rate", "B", "rate", 3),
    ec("assembly-count", "Number of Assemblies Loaded", "", "gauge", 3),
    ec("exception-count", "Exception Count", "", "rate", 3),
    ec("threadpool-thread-count", "ThreadPool Thread Count", "", "gauge", 3),
    ec("monitor-lock-contention-count", "Monitor Lock Contention Count", "", "rate", 3),
    ec("threadpool-queue-length", "ThreadPool Queue Length", "", "gauge", 3),
    ec("threadpool-completed-items-count", "ThreadPool Completed Work Item Count", "", "rate", 3),
    ec("active-timer-count", "Number of Active Timers", "", "gauge", 3),
    ec("poh-size", "POH (Pinned Object Heap) Size", "B", "gauge", 5),
    ec("gc-fragmentation", "GC Fragmentation", "%", "gauge", 5),
    ec("il-bytes-jitted", "IL Bytes Jitted", "B", "gauge", 5),
    ec("methods-jitted-count", "Number of Methods Jitted", "", "gauge", 5),
    ec("gc-committed", "GC Committed Bytes", "MB", "gauge", 6),
    ec("time-in-jit", "Time spent in JIT", "ms", "rate", 6),
    ec("total-pause-time-by-gc", "Time paused by GC", "ms", "rate", 8),
    ec("gen-0-gc-budget", "Gen 0 GC Budget", "MB", "gauge", 8),
    meter("dotnet.gc.collections", "GC collections since process start, per generation (gc.heap.generation)", "{collection}", "counter"),
    meter("dotnet.process.memory.working_set", "Working set of the process", "By", "updowncounter"),
    meter("dotnet.gc.heap.total_allocated", "Bytes allocated on the GC heap since process start", "By", "counter"),
    meter("dotnet.gc.last_collection.memory.committed_size", "Committed GC memory after the last collection", "By", "updowncounter"),
    meter("dotnet.gc.last_collection.heap.size", "GC heap size after the last collection, per generation", "By", "updowncounter"),
    meter("dotnet.gc.last_collection.heap.fragmentation.size", "Heap fragmentation after the last collection, per generation", "By", "updowncounter"),
    meter("dotnet.gc.pause.time", "Time paused in GC since process start", "s", "counter"),
    meter("dotnet.jit.compiled_il.size", "IL bytes compiled by the JIT", "By", "counter"),
    meter("dotnet.jit.compiled_methods", "Methods compiled by the JIT", "{method}", "counter"),
    meter("dotnet.jit.compilation.time", "Time spent in the JIT", "s", "counter"),
    meter("dotnet.monitor.lock_contentions", "Monitor lock contentions", "{contention}", "counter"),
    meter("dotnet.thread_pool.thread.count", "Thread pool threads", "{thread}", "updowncounter"),
    meter("dotnet.thread_pool.work_item.count", "Work items completed by the thread pool", "{work_item}", "counter"),
    meter("dotnet.thread_pool.queue.length", "Work items queued to the thread pool", "{work_item}", "updowncounter"),
    meter("dotnet.timer.count", "Active timers", "{timer}", "updowncounter"),
    meter("dotnet.assembly.count", "Loaded assemblies", "{assembly}", "updowncounter"),
    meter("dotnet.exceptions", "Exceptions thrown, per type (error.type)", "{exception}", "counter"),
    meter("dotnet.process.cpu.count", "Processors available to the process", "{cpu}", "updowncounter"),
    meter("dotnet.process.cpu.time", "CPU time used, per mode (cpu.mode)", "s", "counter"),
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
        .filter(|c| major.is_none_or(|m| c.since <= m.max(3)))
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
                .filter(|c| c.source == "EventCounters")
                .count()
        };
        assert_eq!(ec(3), 19);
        assert_eq!(ec(8), 27);
        assert_eq!(ec(10), 27);
        let meters = |m| {
            for_runtime(Some(m))
                .iter()
                .filter(|c| c.source == "Meter")
                .count()
        };
        assert_eq!(meters(8), 0);
        assert_eq!(meters(9), 19);
    }
}
