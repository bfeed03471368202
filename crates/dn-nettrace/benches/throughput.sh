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
# the best time of each counts. Times are the parse loops' own (process start-up excluded) and
# whole-process wall-clock and CPU times (CPU time is the steadier one on a busy machine).
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

# Runs a reader once; prints "<events> <loop seconds> <wall seconds> <cpu seconds>".
measure() {
    local out times
    local TIMEFORMAT="%R %U %S"
    times=$( { time "$@" >"$work/out.txt"; } 2>&1 )
    out=$(cat "$work/out.txt")
    echo "$out" | sed -E 's/.*"events":([0-9]+),"seconds":([0-9.eE+-]+).*/\1 \2/' | tr '\n' ' '
    echo "$times" | awk '{ print $1, $2 + $3 }'
}

best() { sort -g | head -n 1; }
declare -a cb it te cbw itw tew cbc itc tec
for _ in $(seq 1 "$runs"); do
    read -r n1 s w c <<<"$(measure "$ours" "$trace" --count)"; cb+=("$s"); cbw+=("$w"); cbc+=("$c")
    read -r n2 s w c <<<"$(measure "$ours" "$trace" --count-owned)"; it+=("$s"); itw+=("$w"); itc+=("$c")
    read -r n3 s w c <<<"$(measure dotnet "$work/NettraceOracle/NettraceOracle.dll" "$trace" --count)"; te+=("$s"); tew+=("$w"); tec+=("$c")
    if [ "$n1" != "$n3" ] || [ "$n2" != "$n3" ]; then
        echo "error: event counts differ: callback $n1, iterator $n2, TraceEvent $n3" >&2
        exit 1
    fi
done
min() { printf '%s\n' "$@" | best; }
b_cb=$(min "${cb[@]}"); b_it=$(min "${it[@]}"); b_te=$(min "${te[@]}")
w_cb=$(min "${cbw[@]}"); w_it=$(min "${itw[@]}"); w_te=$(min "${tew[@]}")
c_cb=$(min "${cbc[@]}"); c_it=$(min "${itc[@]}"); c_te=$(min "${tec[@]}")
mb=$(awk "BEGIN { print $size / 1000000 }")
printf 'capture: %s (%.1f MB, %s events), best of %s runs\n' "$trace" "$mb" "$n3" "$runs"
printf '%-38s %7s %6s %6s %8s %7s %6s\n' reader "loop s" "MB/s" ratio "wall s" "cpu s" ratio
row() {
    printf '%-38s %7.3f %6.0f %5.1fx %8.3f %7.3f %5.1fx\n' "$1" "$2" \
        "$(awk "BEGIN { print $mb / $2 }")" "$(awk "BEGIN { print $b_te / $2 }")" "$3" "$4" \
        "$(awk "BEGIN { print $c_te / $4 }")"
}
row "dn-nettrace callback (EventRef)" "$b_cb" "$w_cb" "$c_cb"
row "dn-nettrace iterator (owned Event)" "$b_it" "$w_it" "$c_it"
row "TraceEvent 4.0.0 EventPipeEventSource" "$b_te" "$w_te" "$c_te"
echo "loop s: the parse loop's own time (start-up excluded); ratio = TraceEvent / reader."
echo "wall s, cpu s: whole process (cpu = user + system, all threads); second ratio by cpu s."
