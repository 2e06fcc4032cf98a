#!/usr/bin/env python3
"""SVG of the call-rate controller's greedy probe measurements over training, one line per run, the targets
dashed and each run's selected iterate marked (bench/run_call_rate_control.sh writes the runs).
Usage: bench/plot_call_rate_tracking.py RUNS_DIR OUT.svg   (standard library only)"""
import glob, json, os, sys

runs_dir, out = sys.argv[1], sys.argv[2]
W, H, L, R, T, B = 760, 420, 60, 150, 30, 50
colors = {"0.1": "#1b9e77", "0.2": "#d95f02", "0.3": "#7570b3", "0.5": "#e7298a"}
runs = []
for m in sorted(glob.glob(os.path.join(runs_dir, "*-r*-s*", "metrics.jsonl"))):
    name = os.path.basename(os.path.dirname(m))
    rate = name.split("-r")[1].split("-s")[0]
    pts = {}
    for line in open(m):
        d = json.loads(line)
        pts[d["step"] - 1] = d["probe_call_rate"]  # the measurement taken before that step's update
    sel = os.path.join(os.path.dirname(m), "selected", "selection.json")
    chosen = json.load(open(sel)) if os.path.exists(sel) else None
    runs.append((name, rate, sorted(pts.items()), chosen))
steps = max(s for _, _, p, _ in runs for s, _ in p) + 1
x = lambda s: L + (W - L - R) * s / steps
y = lambda v: T + (H - T - B) * (1 - v)
svg = [f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>']
for v in [0, 0.2, 0.4, 0.6, 0.8, 1.0]:
    svg.append(f'<line x1="{L}" x2="{W-R}" y1="{y(v)}" y2="{y(v)}" stroke="#eee"/>'
               f'<text x="{L-8}" y="{y(v)+4}" text-anchor="end">{v:.1f}</text>')
for s in range(0, steps + 1, 25):
    svg.append(f'<text x="{x(s)}" y="{H-B+18}" text-anchor="middle">{s}</text>')
for rate, c in colors.items():
    if any(r == rate for _, r, _, _ in runs):
        svg.append(f'<line x1="{L}" x2="{W-R}" y1="{y(float(rate))}" y2="{y(float(rate))}" stroke="{c}" '
                   f'stroke-dasharray="6 4"/>')
seen = set()
for name, rate, pts, chosen in runs:
    c = colors.get(rate, "black")
    path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts if v >= 0)
    svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.2" opacity="0.8"/>')
    if chosen:
        svg.append(f'<circle cx="{x(chosen["step"]):.1f}" cy="{y(chosen["probe_call_rate"]):.1f}" r="4" '
                   f'fill="{c}" stroke="black"/>')
    if rate not in seen:
        seen.add(rate)
        ly = T + 20 * len(seen)
        svg.append(f'<line x1="{W-R+15}" x2="{W-R+40}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/>'
                   f'<text x="{W-R+46}" y="{ly+4}">target {rate}</text>')
svg.append(f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">RL step</text>')
svg.append(f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">'
           'greedy call rate on the probe (train split)</text>')
svg.append(f'<text x="{L}" y="18">Call-rate controller: measured greedy rate per run; dashed: targets; '
           'dots: the selected iterates</text></svg>')
open(out, "w").write("\n".join(svg) + "\n")
