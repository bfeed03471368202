#!/usr/bin/env bash
# Parser throughput of dn-nettrace vs TraceEvent's EventPipeEventSource (the NettraceOracle
# fixture in --count mode) on one real capture of at least 100 MB, in the same run.
#
# usage: crates/dn-nettrace/benches/throughput.sh [capture.nettrace]
#
# Without an argument it uses target/nettrace-bench/throughput.nettrace and records it first if
# missing: the ConsoleTarget fixture throws 600 000 exceptions while the runtime's own file
# session (DOTNET_EnableEventPipe) records runtime exception + GC events with stacks and CPU
# samples (about 170 MB, 2.4 million events). RUNS (default 5) runs of each reader, interleaved;
# the best time of each counts. Times are the parse loops' own (process start-up excluded) and,
# separately, whole-process wall-clock times.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
work="$root/target/nettrace-bench"
trace="${1:-$work/throughput.nettrace}"
runs="${RUNS:-5}"
command -v dotnet >/dev/null || { echo "error: dotnet (the .NET SDK) is required" >&2; exit 1; }
mkdir -p "$work"

# Builds a copy of a fixture project (so its obj/ never clashes with other builds).
build() {
    local name=$1 src=$2
    rm -rf "$work/src/$name" "$work/$name"
    mkdir -p "$work/src"
    cp -r "$src" "$work/src/$name"
    rm -rf "$work/src/$name/bin" "$work/src/$name/obj"
    if ! dotnet build -c Release -nologo "$work/src/$name" -o "$work/$name" >"$work/$name.build.log" 2>&1; then
        cat "$work/$name.build.log" >&2
        exit 1
    fi
}

if [ ! -s "$trace" ]; then
    echo "recording $trace ..." >&2
    build ConsoleTarget "$root/fixtures/ConsoleTarget"
    { for _ in $(seq 1 30); do echo "throw 20000"; done; echo exit; } |
        DOTNET_EnableEventPipe=1 \
        DOTNET_EventPipeOutputPath="$trace" \
        DOTNET_EventPipeCircularMB=1024 \
        DOTNET_EventPipeConfig='Microsoft-Windows-DotNETRuntime:0x8001:5,Microsoft-DotNETCore-SampleProfiler:0:5' \
        dotnet "$work/ConsoleTarget/ConsoleTarget.dll" >/dev/null
fi
size=$(stat -c %s "$trace")
if [ "$size" -lt 100000000 ]; then
    echo "error: $trace has $size bytes; the benchmark needs at least 100 MB" >&2
    exit 1
fi

build NettraceOracle "$root/fixtures/oracles/NettraceOracle"
(cd "$root" && cargo build --release -q -p dn-nettrace --example nettrace_dump)
ours="${CARGO_TARGET_DIR:-$root/target}/release/examples/nettrace_dump"

# Runs a reader once; prints "<events> <loop seconds> <wall seconds>".
measure() {
    local start end out
    start=$(date +%s.%N)
    out=$("$@")
    end=$(date +%s.%N)
    echo "$out" | sed -E 's/.*"events":([0-9]+),"seconds":([0-9.eE+-]+).*/\1 \2/' | tr '\n' ' '
    awk "BEGIN { print $end - $start }"
}

best() { sort -g | head -n 1; }
declare -a cb it te cbw itw tew
for _ in $(seq 1 "$runs"); do
    read -r n1 s w <<<"$(measure "$ours" "$trace" --count)"; cb+=("$s"); cbw+=("$w")
    read -r n2 s w <<<"$(measure "$ours" "$trace" --count-owned)"; it+=("$s"); itw+=("$w")
    read -r n3 s w <<<"$(measure dotnet "$work/NettraceOracle/NettraceOracle.dll" "$trace" --count)"; te+=("$s"); tew+=("$w")
    if [ "$n1" != "$n3" ] || [ "$n2" != "$n3" ]; then
        echo "error: event counts differ: callback $n1, iterator $n2, TraceEvent $n3" >&2
        exit 1
    fi
done
b_cb=$(printf '%s\n' "${cb[@]}" | best); b_it=$(printf '%s\n' "${it[@]}" | best); b_te=$(printf '%s\n' "${te[@]}" | best)
w_cb=$(printf '%s\n' "${cbw[@]}" | best); w_it=$(printf '%s\n' "${itw[@]}" | best); w_te=$(printf '%s\n' "${tew[@]}" | best)
mb=$(awk "BEGIN { print $size / 1000000 }")
printf 'capture: %s (%.1f MB, %s events), best of %s runs\n' "$trace" "$mb" "$n3" "$runs"
printf '%-38s %8s %8s %13s %8s\n' reader "loop s" "MB/s" "vs TraceEvent" "wall s"
row() { printf '%-38s %8.3f %8.0f %12.1fx %8.3f\n' "$1" "$2" "$(awk "BEGIN { print $mb / $2 }")" "$(awk "BEGIN { print $b_te / $2 }")" "$3"; }
row "dn-nettrace callback (EventRef)" "$b_cb" "$w_cb"
row "dn-nettrace iterator (owned Event)" "$b_it" "$w_it"
row "TraceEvent 4.0.0 EventPipeEventSource" "$b_te" "$w_te"
