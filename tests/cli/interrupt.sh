#!/usr/bin/env bash
# interrupt.sh PCNAS TABLE DATA WORK [KILLS]: for every method, a small search run once without
# interruption, then run again with SIGKILL at KILLS random moments (each time resumed with
# --resume), and once stopped with SIGINT and once with SIGTERM (each must exit 5 with its
# message, then resume). Every interrupted run must end with the very same result.json values
# (architecture, accuracies, limit) as the uninterrupted one.
set -u
pcnas=$1 table=$2 data=$3 work=$4 kills=${5:-4}
rm -rf "$work"
mkdir -p "$work"
# Small and single-threaded, so that the numbers are reproducible bit for bit, yet long enough
# (a few seconds) that random moments fall into training, evaluation and retraining.
args=(--table "$table" --data "$data" --threads 1 --steps 60 --pool 2 --completions 1 --retrain-epochs 2)
summary() { grep -E '^  "(arch|latency_limit_ms|shared_weight_val_accuracy|val_accuracy|test_accuracy)":' "$1" | tr -d '\n '; }
fail() { echo "interrupt.sh: $*" >&2; exit 1; }
RANDOM=${PCNAS_INTERRUPT_SEED:-$$}

for method in pcnas spos random; do
  ref=$work/$method.ref
  start=$(date +%s%N)
  "$pcnas" search fmnist_micro --method "$method" "${args[@]}" --out "$ref" >"$ref.log" 2>&1 || fail "$method: the uninterrupted run failed: $(tail -3 "$ref.log")"
  span=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { s = (b - a) / 1e9; printf "%.3f", s < 0.5 ? 0.5 : s }')
  expected=$(summary "$ref/result.json")
  echo "$method: uninterrupted in ${span} s: $expected"

  # SIGKILL at random moments, resuming each time; a resumed run has less left to do, so the
  # moments are drawn from the first 70 % of a whole run's time.
  out=$work/$method.killed
  resume=()
  landed=0
  for ((k = 1; k <= kills; ++k)); do
    delay=$(awk -v s="$span" -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.1 + 0.7 * s * r / 32768 }')
    "$pcnas" search fmnist_micro --method "$method" "${args[@]}" --out "$out" "${resume[@]}" >>"$out.log" 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
      echo "$method: SIGKILL after ${delay} s"
      landed=$((landed + 1))
    fi
    wait "$pid" 2>/dev/null
    [[ -d $out ]] && resume=(--resume)
  done
  ((landed > 0)) || fail "$method: no SIGKILL landed before the run finished"
  "$pcnas" search fmnist_micro --method "$method" "${args[@]}" --out "$out" "${resume[@]}" >>"$out.log" 2>&1 ||
    fail "$method: the resumed run failed: $(tail -3 "$out.log")"
  got=$(summary "$out/result.json")
  [[ $got == "$expected" ]] || fail "$method: after $kills kills the result differs: $got, expected $expected"
  ls "$out" | grep -q '\.tmp\.' && fail "$method: a temporary file was left behind: $(ls "$out")"

  # SIGINT and SIGTERM: a clean stop with exit code 5 and a message, then a resume.
  for sig in INT TERM; do
    out=$work/$method.$sig
    delay=$(awk -v s="$span" -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.3 + s * 0.5 * r / 32768 }')
    "$pcnas" search fmnist_micro --method "$method" "${args[@]}" --out "$out" >"$out.log" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if [[ $rc == 0 ]]; then
      echo "$method: SIG$sig after ${delay} s came after the run had finished"
    else
      [[ $rc == 5 ]] || fail "$method: SIG$sig after ${delay} s gave exit code $rc, expected 5: $(tail -2 "$out.log")"
      grep -q "interrupted by SIG$sig: .*--resume" "$out.log" || fail "$method: no message after SIG$sig: $(tail -2 "$out.log")"
      echo "$method: SIG$sig after ${delay} s stopped cleanly"
      "$pcnas" search fmnist_micro --method "$method" "${args[@]}" --out "$out" --resume >>"$out.log" 2>&1 ||
        fail "$method: resuming after SIG$sig failed: $(tail -3 "$out.log")"
    fi
    got=$(summary "$out/result.json")
    [[ $got == "$expected" ]] || fail "$method: after SIG$sig the result differs: $got, expected $expected"
  done
done
echo "interrupt.sh: every interrupted search resumed to the uninterrupted result"
