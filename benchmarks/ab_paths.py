#!/usr/bin/python3
"""Two builds of bench_paths side by side: each benchmark runs alternately on A and B, one short
run at a time, for --rounds rounds, so that load from other work on the machine falls on both
alike. Prints per benchmark the median and the best images/s of each and the ratios B/A.

  benchmarks/ab_paths.py BEFORE/bench_paths AFTER/bench_paths [--rounds 7] [--filter REGEX]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess


def names(binary: str, pattern: str) -> list[str]:
    out = subprocess.run([binary, "--benchmark_list_tests", f"--benchmark_filter={pattern}"], check=True,
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def once(binary: str, name: str, min_time: float) -> float:
    out = subprocess.run([binary, f"--benchmark_filter=^{name}$", f"--benchmark_min_time={min_time}",
                          "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"][0]["images/s"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--filter", default="BM_eigen")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per run (Google Benchmark's min time)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"{'benchmark':34}{'A median':>10}{'B median':>10}{'B/A':>7}{'A best':>10}{'B best':>10}{'B/A':>7}")
    for name in names(args.a, args.filter):
        a, b = [], []
        for _ in range(args.rounds):
            a.append(once(args.a, name, args.min_time))
            b.append(once(args.b, name, args.min_time))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:34}{ma:10.1f}{mb:10.1f}{mb / ma:7.3f}{max(a):10.1f}{max(b):10.1f}{max(b) / max(a):7.3f}",
              flush=True)
    print(f"images/s, {args.rounds} alternating rounds; 1-min load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
