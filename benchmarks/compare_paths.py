#!/usr/bin/python3
"""pcnas (bench_paths) beside PyTorch (compare_pytorch.py) on the bench_paths fmnist paths, run
alternately round by round so that other load on the machine falls on both alike. Prints per
path the median images/s of each side over the rounds (PyTorch: its faster layout in each
round) and the ratios pcnas / PyTorch, for training and evaluation, with the GFLOP/s of each (a
training step counted as three forward passes). With --gemm, the machine's GEMM peak measured in
the same run (torch.mm on 2048 x 2048 x 2048 with PyTorch's BLAS, the same threads). Each side's
GFLOP/s is also given as a share of one core's multiply-add peak (bench_paths' BM_fma_peak, with
pcnas' vector width, measured each round; with more threads, of threads x that peak).

  benchmarks/compare_paths.py BUILD/benchmarks/bench_paths [--threads 2] [--rounds 3] [--gemm]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PATHS = {0: "smallest", 1: "largest", 2: "random", 3: "mixed"}


def pcnas_run(binary: str, which: int, threads: int, min_time: float) -> dict:
    env = dict(os.environ, PCNAS_BENCH_THREADS=str(threads))
    out = subprocess.run([binary, f"--benchmark_filter=^BM_eigen_(train|eval)/{which}/|^BM_fma_peak",
                          f"--benchmark_min_time={min_time}", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b["name"].startswith("BM_fma_peak"):
            result["fma_peak"] = b["GFLOP/s"]
            continue
        kind = "train" if b["name"].startswith("BM_eigen_train") else "eval"
        result[kind] = b["images/s"]
        if ": " in b.get("label", ""):
            result["arch"] = b["label"].split(": ", 1)[1]
    return result


def torch_run(arch: str, threads: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, os.path.join(HERE, "compare_pytorch.py"), "--arch", arch, "--threads", str(threads),
               "--steps", str(args.steps), "--repeats", str(args.repeats), "--warmup", "2", "--json"]
    if args.gemm:
        command.append("--gemm")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_paths")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--paths", default="0,1,2,3", help="bench_paths path numbers: 0 smallest, 1 largest, 2 random, 3 mixed")
    p.add_argument("--steps", type=int, default=5, help="PyTorch timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3, help="PyTorch repeats per round")
    p.add_argument("--min-time", type=float, default=0.5, help="pcnas seconds per benchmark per round")
    p.add_argument("--gemm", action="store_true", help="PyTorch's torch.mm GFLOP/s at the path's shapes (last round)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"{threads_note(args.threads)}; {args.rounds} alternating rounds; medians of images/s")
    print(f"{'path':10}{'pcnas train':>12}{'torch train':>12}{'ratio':>7}{'pcnas eval':>12}{'torch eval':>12}{'ratio':>7}"
          f"{'GF/s train':>16}{'GF/s eval':>16}  layouts")
    peaks, fma_peaks = [], []
    for which in [int(w) for w in args.paths.split(",")]:
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(pcnas_run(args.bench_paths, which, args.threads, args.min_time))
            theirs.append(torch_run(ours[-1]["arch"], args.threads, args))
        pt, pe = statistics.median(o["train"] for o in ours), statistics.median(o["eval"] for o in ours)
        tt = statistics.median(t["train_images_per_s"] for t in theirs)
        te = statistics.median(t["eval_images_per_s"] for t in theirs)
        macs = theirs[-1]["macs"]
        layouts = ",".join(sorted({t["train_layout"] for t in theirs})) + "/" + ",".join(
            sorted({t["eval_layout"] for t in theirs}))
        gflops = [6 * macs * pt / 1e9, 6 * macs * tt / 1e9, 2 * macs * pe / 1e9, 2 * macs * te / 1e9]
        fma = statistics.median(o["fma_peak"] for o in ours if "fma_peak" in o) * args.threads
        fma_peaks.append(fma)
        print(f"{PATHS[which]:10}{pt:12.1f}{tt:12.1f}{pt / tt:7.2f}{pe:12.1f}{te:12.1f}{pe / te:7.2f}"
              f"{gflops[0]:8.0f}/{gflops[1]:<7.0f}{gflops[2]:8.0f}/{gflops[3]:<7.0f}  {layouts}   [{ours[-1]['arch']}]",
              flush=True)
        print(f"{'':10}of the multiply-add peak ({fma:.0f} GFLOP/s): pcnas train {gflops[0] / fma:.0%}, eval "
              f"{gflops[2] / fma:.0%}; torch train {gflops[1] / fma:.0%}, eval {gflops[3] / fma:.0%}", flush=True)
        if args.gemm and theirs[-1].get("gemm"):
            shapes = "  ".join(f"{g['m']}x{g['k']}->{g['n']}: {g['gflops']:.0f}" for g in theirs[-1]["gemm"])
            print(f"{'':10}torch.mm GFLOP/s: {shapes}", flush=True)
            peak = max(g["gflops"] for g in theirs[-1]["gemm"] if g["m"] == g["k"] == g["n"])
            peaks.append(peak)
            print(f"{'':10}of the GEMM peak ({peak:.0f} GFLOP/s): pcnas train {gflops[0] / peak:.0%}, eval "
                  f"{gflops[2] / peak:.0%}; torch train {gflops[1] / peak:.0%}, eval {gflops[3] / peak:.0%}", flush=True)
    print(f"multiply-add peak ({args.threads} thread(s), pcnas' vectors) over the run: "
          f"{min(fma_peaks):.0f}-{max(fma_peaks):.0f} GFLOP/s")
    if peaks:
        print(f"GEMM peak (torch.mm 2048^3, {args.threads} thread(s)) over the run: {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s")
    print(f"1-min load average {load:.2f} before, {os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs")
    return 0


def threads_note(threads: int) -> str:
    return f"{threads} thread(s) on each side, batch 128"


if __name__ == "__main__":
    raise SystemExit(main())
