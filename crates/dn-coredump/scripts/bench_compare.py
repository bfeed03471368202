#!/usr/bin/env python3
"""Full-dump benchmark: dn-coredump against `gdb gcore` and the runtime's
createdump on the same .NET process, in the same run.

    cargo build --release -p dn-coredump
    sudo python3 crates/dn-coredump/scripts/bench_compare.py [--mb 1024] [--leak N] [--out DIR]
        [--tools dn,dn-stream,createdump-full] [--rounds 5]

Starts the ConsoleTarget fixture (published here with `dotnet publish` unless
--fixture-dll is given), makes it hold --mb MiB of managed objects, then dumps
it (and --leak N small objects) with each tool in turn. For each dump it reports wall time, logical size,
size on disk (du), how long the target's main thread was in ptrace stop
(state 't', sampled every millisecond) and the target's VmRSS afterwards.
Tools run in rounds (dn-coredump first in each); medians are reported.
A reader that faults pages in (gcore) can make later dumps of the same
process larger, which the later rounds show.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class StopSampler:
    """Measures how long /proc/PID/stat reads state 't' (ptrace-stopped)."""

    def __init__(self, pid):
        self.path = f"/proc/{pid}/stat"
        self.stopped_s = 0.0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def state(self):
        try:
            with open(self.path) as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return "?"

    def run(self):
        last = time.monotonic()
        was = False
        while self.running:
            now = time.monotonic()
            st = self.state() in ("t", "T")
            if st and was:
                self.stopped_s += now - last
            was, last = st, now
            time.sleep(0.001)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.stopped_s * 1000.0


def vm_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def du_mib(path):
    out = subprocess.run(["du", "-k", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0]) / 1024.0


def run_tool(name, cmd, pid, out_path):
    subprocess.run(["sync"], check=True)
    sampler = StopSampler(pid)
    t = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t
    stopped = sampler.stop()
    if res.returncode != 0:
        print(f"{name} failed: {res.stderr.strip()}", file=sys.stderr)
        return None
    produced = out_path if os.path.exists(out_path) else (glob.glob(out_path + "*") or [None])[0]
    row = {
        "tool": name,
        "wall_s": round(wall, 2),
        "stopped_ms_sampled": round(stopped),
        "apparent_mib": round(os.path.getsize(produced) / 2**20, 1),
        "on_disk_mib": round(du_mib(produced), 1),
        "target_rss_after_mib": round(vm_rss_mib(pid), 1),
        "command": " ".join(cmd),
    }
    if name.startswith("dn-coredump"):
        s = json.loads(res.stdout)
        row["stopped_ms_reported"] = round(s["target_stopped_ms"])
    os.remove(produced)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="MiB of managed objects the target holds")
    ap.add_argument("--out", default=None, help="directory for the dumps (default: a temp dir in /tmp)")
    ap.add_argument("--fixture-dll", default=None, help="ConsoleTarget.dll to run with dotnet")
    ap.add_argument("--collector", default=None, help="dn-coredump binary")
    ap.add_argument("--leak", type=int, default=0, help="small objects the target also holds (ConsoleTarget `leak N`)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all tools (medians are reported)")
    ap.add_argument("--tools", default="dn,dn-heap,createdump-full,createdump-withheap,gcore",
                    help="comma-separated: dn (default mode), dn-precopy, dn-staged, dn-stream (--max-buffer 0), dn-heap, createdump-full, "
                         "createdump-withheap, gcore")
    args = ap.parse_args()

    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    collector = args.collector or os.path.join(target_dir, "release", "dn-coredump")
    if not os.path.exists(collector):
        sys.exit(f"{collector} missing: run `cargo build --release -p dn-coredump` first")
    work = tempfile.mkdtemp(prefix="dn-bench-")
    out = args.out or work
    dll = args.fixture_dll
    if dll is None:
        sh("dotnet", "publish", os.path.join(ROOT, "fixtures", "ConsoleTarget", "ConsoleTarget.csproj"),
           "-c", "Release", "-o", os.path.join(work, "fixture"), stdout=subprocess.DEVNULL)
        dll = os.path.join(work, "fixture", "ConsoleTarget.dll")

    target = subprocess.Popen(["dotnet", dll], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = target.stdout.readline().strip()
        assert ready.startswith("READY"), ready
        pid = target.pid

        def command(line):
            target.stdin.write(line + "\n")
            target.stdin.flush()
            return target.stdout.readline().strip()

        assert command(f"alloc-mb {args.mb}") == "ok"
        if args.leak:
            assert command(f"leak {args.leak}").startswith("ok"), "leak failed"
        print(f"target pid {pid}, holds {args.mb} MiB and {args.leak} leaked objects, VmRSS {vm_rss_mib(pid):.0f} MiB, "
              f"{len(os.listdir(f'/proc/{pid}/task'))} threads", file=sys.stderr)
        rt_dir = None
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if line.rstrip().endswith("/libcoreclr.so"):
                    rt_dir = os.path.dirname(line.split()[-1])
                    break
        createdump = os.path.join(rt_dir, "createdump")

        known = {
            "dn": ("dn-coredump full", lambda p: [collector, "-p", str(pid), "-o", p, "--json"]),
            "dn-precopy": ("dn-coredump full --copy precopy",
                           lambda p: [collector, "-p", str(pid), "-o", p, "--copy", "precopy", "--json"]),
            "dn-staged": ("dn-coredump full --copy staged",
                          lambda p: [collector, "-p", str(pid), "-o", p, "--copy", "staged", "--json"]),
            "dn-stream": ("dn-coredump full --max-buffer 0",
                          lambda p: [collector, "-p", str(pid), "-o", p, "--max-buffer", "0", "--json"]),
            "dn-heap": ("dn-coredump heap", lambda p: [collector, "-p", str(pid), "-o", p, "--type", "heap", "--json"]),
            "createdump-full": ("createdump --full", lambda p: [createdump, "--full", "-f", p, str(pid)]),
            "createdump-withheap": ("createdump --withheap", lambda p: [createdump, "--withheap", "-f", p, str(pid)]),
            "gcore": ("gdb gcore", lambda p: ["gdb", "-batch", "-nx", "-p", str(pid), "-ex", f"gcore {p}"]),
        }
        runs = [known[t] for t in args.tools.split(",")]
        results = {name: [] for name, _ in runs}
        for rnd in range(args.rounds):
            for i, (name, mk) in enumerate(runs):
                path = os.path.join(out, f"core{rnd}_{i}")
                row = run_tool(name, mk(path), pid, path)
                if row:
                    results[name].append(row)
                    print(json.dumps(row), file=sys.stderr)
                assert command("ping") == "pong", "target stopped answering"

        def med(rows, key):
            vals = sorted(r[key] for r in rows)
            m = vals[len(vals) // 2]
            return f"{m} ({vals[0]}-{vals[-1]})" if len(vals) > 1 else f"{m}"

        print(f"\nmedian (min-max) of {args.rounds} rounds; target held {args.mb} MiB\n")
        print("| tool | wall s | target stopped ms (sampled) | apparent MiB | on disk MiB | target VmRSS after MiB |")
        print("|---|---|---|---|---|---|")
        for name, rows in results.items():
            if not rows:
                print(f"| {name} | failed | | | | |")
                continue
            print(f"| {name} | {med(rows, 'wall_s')} | {med(rows, 'stopped_ms_sampled')} | {med(rows, 'apparent_mib')} "
                  f"| {med(rows, 'on_disk_mib')} | {med(rows, 'target_rss_after_mib')} |")
    finally:
        target.kill()
        target.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
