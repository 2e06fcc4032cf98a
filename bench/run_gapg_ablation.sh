#!/bin/bash
# Why GAPG lands where it does on a preset: one factor at a time away from the preset's GAPG recipe (RL seed 1),
# each variant evaluated by the demo's own stages against the same routers on the same held-out items.
# Factors (issue 15 §4): α_c, the group size G, the controller's step η, the run's length, and the paper's
# filter alone (no controller) at three budgets ρ (with the controller on, ρ only sets its target: the rate
# sweep of the 3-seed run is that ablation).
# Usage: bench/run_gapg_ablation.sh SRC_RUN [PRESET] [OUT] [VARIANTS]
#   SRC_RUN: a finished `handoff demo` run of PRESET (its seed-1 task-tuning run, cloud cache and verdicts are
#   reused: every variant is compared with the very same routers). Two variants at a time, one thread each.
# Prints a table: variant, GAPG's held-out call rate and accuracy, the best router at that rate and the
# paired difference, and the paper's router (prompt classifier) at that rate.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${HANDOFF_BIN:-build/handoff}
SRC=${1:?usage: bench/run_gapg_ablation.sh SRC_RUN [PRESET] [OUT] [VARIANTS]}
PRESET=${2:-hops-mix}
OUT=${3:-runs/gapg-ablation}
VARIANTS=${4:-"alpha_c=0.5 alpha_c=0.9 group=4 group=16 dual_step=0.15 dual_step=0.6 steps=300 paper:budget=0.25 paper:budget=0.4286 paper:budget=0.6667"}
[ -d "$SRC/rl-task-tuning/model" ] || { echo "$SRC has no finished rl-task-tuning run" >&2; exit 2; }
[ -f "$PRESET" ] || PRESET="configs/$PRESET.json"
[ -f "$PRESET" ] || { echo "no preset $PRESET" >&2; exit 2; }
mkdir -p "$OUT"
variant() {  # name like alpha_c=0.5 or paper:budget=0.25
  local v=$1 d="$OUT/$1"
  [ -f "$d/results.json" ] && return
  rm -rf "$d" && mkdir -p "$d"
  cp -r "$SRC/rl-task-tuning" "$SRC/cloud_cache.jsonl" "$d/"
  python3 - "$PRESET" "$v" "$d/preset.json" <<'PY'
import json, sys
preset, v, out = sys.argv[1:]
p = json.load(open(preset))
d = p["demo"]
d["seeds"] = [1]
d["algos"] = ["task-tuning", "gapg"]
d.pop("gapg_rate_sweep", None)
g = dict(d.get("algo_options", {}).get("gapg", {}))
if v.startswith("paper:"):  # the paper's filter alone: no controller, no tail, no iterate selection
    g = {}
    v = v[len("paper:"):]
key, value = v.split("=")
g[key] = float(value) if "." in value else int(value)
d["algo_options"] = {"gapg": g}
json.dump(p, open(out, "w"), indent=2)
PY
  $B demo --preset "$d/preset.json" --out "$d" --jobs 1 > "$d/demo.log" 2>&1 || echo "FAILED $v (see $d/demo.log)"
}
for v in $VARIANTS; do
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 2; done
  variant "$v" &
done
wait
python3 - "$OUT" $VARIANTS <<'PY'
import json, os, sys
out, variants = sys.argv[1], sys.argv[2:]
print("| variant | call rate | accuracy | best router (rate, acc) | difference [95 % paired CI] | prompt router at that rate |")
print("|---|---|---|---|---|---|")
for v in variants:
    f = os.path.join(out, v, "results.json")
    if not os.path.exists(f):
        print(f"| {v} | failed | | | | |"); continue
    r = json.load(open(f))
    row = next(x for x in r["at_own_rate"] if x["method"].startswith("GAPG (ours): the device decides"))
    curve = r["router_curves"]["task-tuning & router (prompt classifier)"]
    pts = sorted((p["call_rate"], p["accuracy"]) for p in curve)
    c = row["call_rate"]
    lo = max((p for p in pts if p[0] <= c), default=pts[0]); hi = min((p for p in pts if p[0] >= c), default=pts[-1])
    prompt = lo[1] if hi[0] == lo[0] else lo[1] + (hi[1] - lo[1]) * (c - lo[0]) / (hi[0] - lo[0])
    print(f"| {v} | {c:.3f} | {row['accuracy']:.3f} | {row['router'].replace('task-tuning & ', '')} "
          f"({row['router_call_rate']:.3f}, {row['router_accuracy']:.3f}) | {row['difference']:+.3f} "
          f"[{row['difference_lo']:+.3f}, {row['difference_hi']:+.3f}] | {prompt:.3f} |")
PY
