#!/usr/bin/python3
"""Self time per ATen op, per stage, from a Chrome trace of the ATen profiler (bench/bench_gapg_profile writes
one, its stages marked as `stage::NAME` scopes). Self time: an op's duration less that of the ops it called.
The profiler's own cost is in every op, so the shares mean more than the milliseconds.

Usage: profile_table.py TRACE.json [TOP = 14]
"""
import collections
import json
import sys


def main():
    events = [e for e in json.load(open(sys.argv[1])) if e.get("ph") == "X"]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 14
    stages = [e for e in events if e["name"].startswith("stage::")]
    ops = sorted((e for e in events if not e["name"].startswith("stage::")),
                 key=lambda e: (e["tid"], e["ts"], -e["dur"]))

    def stage_of(e):
        for s in stages:
            if s["ts"] <= e["ts"] <= s["ts"] + s["dur"]:
                return s["name"][len("stage::"):]
        return "(outside the stages)"

    self_us = collections.defaultdict(collections.Counter)
    calls = collections.defaultdict(collections.Counter)
    stack = []  # (name, end, stage) of the ops enclosing the current one
    for e in ops:
        while stack and stack[-1][1] <= e["ts"] + 1e-9:
            stack.pop()
        stage = stage_of(e)
        if stack:
            self_us[stack[-1][2]][stack[-1][0]] -= e["dur"]
        self_us[stage][e["name"]] += e["dur"]
        calls[stage][e["name"]] += 1
        stack.append((e["name"], e["ts"] + e["dur"], stage))
    wall = collections.Counter()
    for s in stages:
        wall[s["name"][len("stage::"):]] += s["dur"]
    for stage, times in self_us.items():
        total = sum(times.values())
        print(f"\n{stage}: {wall[stage] / 1e3:.0f} ms in the stage, {total / 1e3:.0f} ms in ATen ops, "
              f"{sum(calls[stage].values())} op calls")
        print("| op | self ms | share | calls |\n|---|---|---|---|")
        for name, us in times.most_common(top):
            print(f"| {name} | {us / 1e3:.1f} | {100 * us / total:.1f} % | {calls[stage][name]} |")


if __name__ == "__main__":
    main()
