#!/usr/bin/env python3
"""The table of bench/run_demo_solo_solving.sh: per RL run of a demo, greedy accuracy by difficulty with the
hand-off banned (what the device solves by itself), its mean, and with its own decisions the share of items
it keeps and solves and its hand-off rate. Runs are grouped by method so seeds sit side by side.

Usage: solo_solving_runs_table.py DIR   (DIR holds ban-NAME.json and own-NAME.json from `handoff eval --json`)
"""
import json
import os
import sys


def mean(rows, key):
    return sum(r[key] for r in rows) / len(rows)


def main(folder):
    names = sorted(f[len("ban-"):-len(".json")] for f in os.listdir(folder)
                   if f.startswith("ban-") and f.endswith(".json"))
    if not names:
        sys.exit(f"no ban-*.json in {folder}")
    diffs = None
    lines = []
    for name in names:
        ban = json.load(open(os.path.join(folder, f"ban-{name}.json")))
        own_path = os.path.join(folder, f"own-{name}.json")
        own = json.load(open(own_path)) if os.path.exists(own_path) else None
        if any(r["handoff_rate"] > 0 for r in ban):
            sys.exit(f"{name}: ban-{name}.json has hand-offs: it was not decoded with --no-handoff")
        diffs = diffs or [r["difficulty"] for r in ban]
        if [r["difficulty"] for r in ban] != diffs:
            sys.exit(f"{name}: another set of difficulties than the other runs")
        cells = " | ".join(f"{r['accuracy']:.2f}" for r in ban)
        kept = f"{mean(own, 'accuracy'):.3f} | {mean(own, 'handoff_rate'):.3f}" if own else "– | –"
        lines.append(f"| {name} | {cells} | **{mean(ban, 'accuracy'):.3f}** | {kept} |")
    print("| run (rl-…) | " + " | ".join(f"d = {d}" for d in diffs) +
          " | solves alone (mean) | own decisions: keeps and solves | hands off |")
    print("|---" * (len(diffs) + 4) + "|")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
