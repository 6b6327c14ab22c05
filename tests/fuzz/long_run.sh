#!/usr/bin/env bash
# long_run.sh BUILD_DIR SECONDS WORK [TARGET...]: runs each fuzz target (all by default) for
# SECONDS, one after the other on one core, over WORK/<target> (new inputs) and the committed
# seeds, and prints each one's executions, time and outcome. A crash leaves its reproducer
# (crash-*) in WORK; copy it into corpus/<target>/ once it is fixed.
set -u
build=$1 seconds=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
((${#targets[@]})) || targets=(idx idx_gz cifar10 arch_text arch_json latency_table checkpoint supernet_state)
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log=$work/$t.log
  start=$(date +%s)
  (cd "$work" && "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
     -print_final_stats=1 "$work/$t" "$here/corpus/$t" >"$log" 2>&1)
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "$t: ${runs:-?} executions in $(($(date +%s) - start)) s, exit code $rc$( ((rc)) && echo ' -- see '"$log")"
  ((rc)) && status=1
done
exit $status
