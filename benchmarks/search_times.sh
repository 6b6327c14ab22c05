#!/usr/bin/env bash
# Where a full-budget search's time goes, per method: runs
#   pcnas search fmnist --method M --budget full --retrain-epochs 0 --threads 1 --table TABLE --data DATA --out OUT/M
# for each method given (all of them at once, one thread each: give at most as many as there are
# cores), then prints each one's wall time, peak memory and the driver's own split (its `timing`
# events, one per phase). A finished search is not run again: delete OUT/M to measure it anew.
#
#   benchmarks/search_times.sh PCNAS TABLE DATA OUT [METHOD ...]   (methods: pcnas spos random; default pcnas spos)
set -euo pipefail
if (($# < 4)); then
  sed -n 2,8p "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
pcnas=$1 table=$2 data=$3 out=$4
shift 4
methods=("$@")
((${#methods[@]})) || methods=(pcnas spos)
mkdir -p "$out"
for m in "${methods[@]}"; do
  [[ -f $out/$m/result.json ]] && continue
  /usr/bin/time -v -o "$out/$m.time" "$pcnas" search fmnist --method "$m" --budget full --retrain-epochs 0 \
    --threads 1 --table "$table" --data "$data" --out "$out/$m" >"$out/$m.log" 2>&1 &
done
wait
for m in "${methods[@]}"; do
  wall=$(python3 -c "import json; print(round(json.load(open('$out/$m/result.json'))['search_seconds']))")
  peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.2f GB", $2 / 1048576}' "$out/$m.time" 2>/dev/null || echo "?")
  split=$(grep '"kind":"timing"' "$out/$m/log.jsonl" |
    python3 -c "import json, sys; print('; '.join(json.loads(line)['message'] for line in sys.stdin))")
  best=$(python3 -c "import json; s = json.load(open('$out/$m/search.json')); print(s['best_arch'], s['best_accuracy'], s.get('evaluations'))")
  echo "$m: ${wall} s wall, peak ${peak}; ${split}; best ${best}"
done
