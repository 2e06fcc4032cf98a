#!/usr/bin/env python3
"""The table of bench/run_solo_solving.sh: per seed and method, the device's greedy accuracy with the hand-off
banned, per class and weighted as hops-mix weights its items (class 1 seven times, classes 2..7 once), then the
method's own collaborative accuracy and call rate, and the most any router could reach at that rate on that
device (solo + min(rate, failures), i.e. a perfect cloud on exactly the failures)."""
import json
import os
import sys

WEIGHTS = {1: 7, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}


def weighted(rows, key):
    total = sum(WEIGHTS[r["difficulty"]] for r in rows if r["difficulty"] in WEIGHTS)
    return sum(WEIGHTS[r["difficulty"]] * r[key] for r in rows if r["difficulty"] in WEIGHTS) / total


def main(out):
    runs = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "solo.json")))
    if not runs:
        sys.exit(f"no finished run in {out}")
    print("| run | solo accuracy by class 1..7 (hand-off banned) | solo, weighted | own decisions: "
          "accuracy @ call rate | device-correct | bound at that rate on this device |")
    print("|---|---|---|---|---|---|")
    for d in runs:
        solo = json.load(open(os.path.join(out, d, "solo.json")))
        if isinstance(solo, dict):  # the older records: through the cloud at --handoff-threshold 1
            solo = solo["collaborative"]
        own = json.load(open(os.path.join(out, d, "own.json")))["collaborative"]
        if any(r.get("call_rate", r.get("handoff_rate", 0)) > 0 for r in solo):
            sys.exit(f"{d}: the hand-off was not banned in solo.json")
        by_class = " ".join(f"{r['difficulty']}:{r['accuracy']:.2f}" for r in solo)
        s = weighted(solo, "accuracy")
        acc, rate, kept = weighted(own, "accuracy"), weighted(own, "call_rate"), weighted(own, "device_correct")
        print(f"| {d} | {by_class} | {s:.3f} | {acc:.3f} @ {rate:.3f} | {kept:.3f} | {s + min(rate, 1 - s):.3f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/solo-solving")
