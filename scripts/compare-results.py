#!/usr/bin/env python3
"""Compare two demo results.json files value for value, ignoring timings and latencies.

    scripts/compare-results.py A/results.json B/results.json [--ignore KEY ...]   (or the two run directories)

Ignored: "stage_seconds" and every key whose name contains "_ms" or "latency" (measured wall time, which
changes from run to run), and each KEY given with --ignore (e.g. device_model and cloud_model, paths that
name the run directory or the checkout). Everything else must be equal: the same keys, the same list lengths, the same
strings, and numbers equal as parsed (no tolerance). Prints each differing path and exits 1 on a difference,
0 when equal, 2 on bad input.
"""
import json
import os
import sys


EXTRA_IGNORED = set()


def ignored(key):
    return key == "stage_seconds" or "_ms" in key or "latency" in key or key in EXTRA_IGNORED


def compare(a, b, path, diffs):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if ignored(k):
                continue
            p = f"{path}.{k}" if path else k
            if k not in a:
                diffs.append(f"{p}: only in B")
            elif k not in b:
                diffs.append(f"{p}: only in A")
            else:
                compare(a[k], b[k], p, diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: {len(a)} entries in A, {len(b)} in B")
        for i, (x, y) in enumerate(zip(a, b)):
            label = x.get("method") if isinstance(x, dict) and isinstance(x.get("method"), str) else None
            compare(x, y, f"{path}[{i}]" + (f"({label})" if label else ""), diffs)
    elif isinstance(a, bool) or isinstance(b, bool) or not (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
    ):
        if type(a) is not type(b) or a != b:
            diffs.append(f"{path}: {json.dumps(a)} != {json.dumps(b)}")
    elif a != b:
        diffs.append(f"{path}: {a!r} != {b!r}")


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"compare-results: cannot read {path}: {e}", file=sys.stderr)
        sys.exit(2)


def main():
    args, files = sys.argv[1:], []
    while args:
        a = args.pop(0)
        if a == "--ignore" and args:
            EXTRA_IGNORED.add(args.pop(0))
        elif a.startswith("-"):
            files = []
            break
        else:
            files.append(a)
    if len(files) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    diffs = []
    compare(load(files[0]), load(files[1]), "", diffs)
    for d in diffs:
        print(d)
    if diffs:
        print(f"{len(diffs)} difference(s)")
        return 1
    extra = f", and {', '.join(sorted(EXTRA_IGNORED))}" if EXTRA_IGNORED else ""
    print(f"equal value for value (timings and latencies ignored{extra})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
