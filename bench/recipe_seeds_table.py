#!/usr/bin/env python3
"""Recipes compared over RL seeds, from bench/run_demo_solo_solving.sh's evaluations (issue 15: on chain the
seed-to-seed spread of what RL teaches the device is as large as the differences between recipes, so a
recipe is chosen on its mean over many seeds, with the spread said).

Usage: recipe_seeds_table.py LABEL=DIR[,DIR...] ...
  Each DIR holds ban-NAME.json and own-NAME.json (`handoff eval --json`, device alone, hand-off banned / own
  decisions); NAME ends in -sN (the seed). Prints, per recipe, each seed's solo accuracy (mean over
  difficulties), hand-off rate with its own decisions and what it keeps and solves; then the mean, the sd
  over seeds and, against the first recipe, the difference of means with a Welch 95 % interval.
"""
import json
import math
import os
import re
import sys


def runs(folder):
    out = {}
    for f in sorted(os.listdir(folder)):
        m = re.match(r"ban-(.*-s(\d+))\.json$", f)
        if not m:
            continue
        ban = json.load(open(os.path.join(folder, f)))
        if any(r["handoff_rate"] > 0 for r in ban):
            sys.exit(f"{folder}/{f} has hand-offs: it was not decoded with --no-handoff")
        own_path = os.path.join(folder, f"own-{m.group(1)}.json")
        own = json.load(open(own_path)) if os.path.exists(own_path) else ban
        out[int(m.group(2))] = {
            "solo": sum(r["accuracy"] for r in ban) / len(ban),
            "rate": sum(r["handoff_rate"] for r in own) / len(own),
            "keeps": sum(r["accuracy"] for r in own) / len(own),
        }
    return out


def stats(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd


# Two-sided 97.5 % quantiles of Student's t by degrees of freedom (1..30); beyond, the normal's.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def welch(a, b):
    (ma, sa), (mb, sb) = stats(a), stats(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1)) if se > 0 else 1
    t = T975[min(int(df), 30) - 1] if df < 31 else 1.96
    d = mb - ma
    return d, d - t * se, d + t * se


def main(args):
    if not args:
        sys.exit(__doc__)
    recipes = []
    for arg in args:
        label, _, dirs = arg.partition("=")
        if not dirs:
            sys.exit(f"'{arg}' is not LABEL=DIR[,DIR...]")
        merged = {}
        for d in dirs.split(","):
            for seed, r in runs(d).items():
                if seed in merged:
                    sys.exit(f"{label}: seed {seed} appears twice")
                merged[seed] = r
        if not merged:
            sys.exit(f"{label}: no ban-*-sN.json in {dirs}")
        recipes.append((label, merged))
    print("| recipe | seed: solves alone (hands off, keeps and solves) | mean solo ± sd | mean rate | "
          "solo − first recipe [Welch 95 %] |")
    print("|---|---|---|---|---|")
    base = [r["solo"] for r in recipes[0][1].values()]
    for i, (label, rs) in enumerate(recipes):
        cells = ", ".join(f"{s}: {r['solo']:.3f} ({r['rate']:.3f}, {r['keeps']:.3f})" for s, r in sorted(rs.items()))
        solo = [r["solo"] for r in rs.values()]
        m, sd = stats(solo)
        rate = sum(r["rate"] for r in rs.values()) / len(rs)
        diff = "—" if i == 0 else "{:+.3f} [{:+.3f}, {:+.3f}]".format(*welch(base, solo))
        print(f"| {label} | {cells} | {m:.3f} ± {sd:.3f} | {rate:.3f} | {diff} |")


if __name__ == "__main__":
    main(sys.argv[1:])
