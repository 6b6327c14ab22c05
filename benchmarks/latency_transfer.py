#!/usr/bin/python3
"""Does a latency table hold in another process? For each batch: builds a table
(`pcnas latency fmnist --batch B --threads 1 --out DIR/tB.json`), then checks it in --checks separate
processes (`pcnas latency fmnist --table DIR/tB.json --validate K --seed S --json`, S = 1, 2, ...),
and prints per check the share within 10 % and 5 %, the mean bias and the RMSPE: of the table as
stored, and of the table at the machine's speed now (scaled by the reference architectures' speed
ratio, which the check measures in the same rounds). The JSON of every check is kept in DIR.

  benchmarks/latency_transfer.py --pcnas build/bin/pcnas --out DIR [--batches 1,32] [--checks 3] [--validate 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pcnas", required=True, help="the pcnas program")
    p.add_argument("--out", required=True, help="folder for the tables and the checks' JSON")
    p.add_argument("--space", default="fmnist")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--checks", type=int, default=3, help="separate checking processes per table")
    p.add_argument("--validate", type=int, default=30, help="architectures per check")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("| batch | check | scaled: within ±10 % | ±5 % | bias | RMSPE | speed ratio | as stored: within ±10 % "
          "| ±5 % | bias |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch in [int(b) for b in args.batches.split(",")]:
        table = os.path.join(args.out, f"t{batch}.json")
        run([args.pcnas, "latency", args.space, "--batch", str(batch), "--threads", "1", "--out", table])
        for seed in range(1, args.checks + 1):
            text = run([args.pcnas, "latency", args.space, "--table", table, "--validate", str(args.validate),
                        "--seed", str(seed), "--json"])
            with open(os.path.join(args.out, f"check_b{batch}_s{seed}.json"), "w") as f:
                f.write(text)
            d = json.loads(text)
            stored = d.get("as_stored", d)
            ratio = f"{d['speed_ratio']:.3f}" if "speed_ratio" in d else "-"
            print(f"| {batch} | {seed} | {pct(d['within_10'])} | {pct(d['within_5'])} | {100 * d['mean_bias']:+.1f} % "
                  f"| {100 * d['rmspe']:.1f} % | {ratio} | {pct(stored['within_10'])} | {pct(stored['within_5'])} "
                  f"| {100 * stored['mean_bias']:+.1f} % |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
