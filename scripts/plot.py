#!/usr/bin/env python3
"""Plot imbench W1 results as an SVG, with the Python standard library only.

    python3 scripts/plot.py docs/bench/w1-sqlite.json docs/bench/w1-postgres.json -o docs/bench/w1.svg

Left: p99 publish-to-receive latency against the achieved load (accepted
msgs/s), one line per target, both axes logarithmic. Right: the maximum
accepted msgs/s of each target, with imserver's ratio to the bare broker
measured in the same run.
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def load(paths):
    """Returns {series name: [(accepted/s, p99 ms, phase)]} and {series: max accepted/s}."""
    series, maxima = {}, {}
    seen_before = set()
    for path in paths:
        names_here = set()
        with open(path) as f:
            rep = json.load(f)
        engine = next((t["engine"] for t in rep["targets"] if t["kind"] == "imserver"), "")
        for r in rep["results"]:
            if r["workload"] != "W1" or r.get("skipped"):
                continue
            name = r["target"] if r["target"].startswith("imserver") else f'{r["target"]} (run with {engine})'
            k = 2
            base_name = name
            while name in seen_before:  # the same target again, from a later run
                name = f"{base_name} #{k}"
                k += 1
            names_here.add(name)
            m = r["metrics"]
            series.setdefault(name, []).append((m["accepted_per_s"], m["p99_ms"], r["phase"]))
            if r["phase"] == "max":
                maxima[name] = m["accepted_per_s"]
        seen_before |= names_here
    for pts in series.values():
        pts.sort()
    return series, maxima


def log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for k in (1, 2, 5):
            v = k * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def fmt(v):
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def plot(series, maxima, title):
    W, H = 1000, 440
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    # Left panel: p99 against load, log-log.
    x0, y0, pw, ph = 70, 50, 480, 320
    xs = [p[0] for pts in series.values() for p in pts if p[0] > 0]
    ys = [p[1] for pts in series.values() for p in pts if p[1] > 0]
    xlo, xhi = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs)))
    ylo, yhi = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))
    X = lambda v: x0 + (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo)) * pw
    Y = lambda v: y0 + ph - (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * ph
    out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    for t in log_ticks(xlo, xhi):
        out.append(f'<line x1="{X(t):.1f}" y1="{y0}" x2="{X(t):.1f}" y2="{y0+ph}" stroke="#eee"/>')
        out.append(f'<text x="{X(t):.1f}" y="{y0+ph+16}" text-anchor="middle">{fmt(t)}</text>')
    for t in log_ticks(ylo, yhi):
        out.append(f'<line x1="{x0}" y1="{Y(t):.1f}" x2="{x0+pw}" y2="{Y(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0-6}" y="{Y(t)+4:.1f}" text-anchor="end">{fmt(t)}</text>')
    if ylo <= 50 <= yhi:
        out.append(f'<line x1="{x0}" y1="{Y(50):.1f}" x2="{x0+pw}" y2="{Y(50):.1f}" stroke="#999" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{x0+pw-4}" y="{Y(50)-4:.1f}" text-anchor="end" fill="#666">p99 target 50 ms</text>')
    out.append(f'<text x="{x0+pw/2}" y="{y0+ph+36}" text-anchor="middle">achieved load: accepted msgs/s (log)</text>')
    out.append(f'<text transform="translate({x0-48},{y0+ph/2}) rotate(-90)" text-anchor="middle">p99 publish-to-receive latency, ms (log)</text>')
    names = sorted(series)
    for i, name in enumerate(names):
        c = COLORS[i % len(COLORS)]
        pts = [(x, y, ph_) for x, y, ph_ in series[name] if x > 0 and y > 0]
        dash = ' stroke-dasharray="5,3"' if not name.startswith("imserver") else ""
        path = " ".join(f"{'M' if j == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for j, (x, y, _) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y, phase in pts:
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{c}"><title>{escape(name)} {escape(phase)}: {x:.0f} msgs/s, p99 {y:.1f} ms</title></circle>')
        out.append(f'<line x1="{x0+10}" y1="{y0+14+i*16}" x2="{x0+34}" y2="{y0+14+i*16}" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x0+40}" y="{y0+18+i*16}">{escape(name)}</text>')
    # Right panel: maximum throughput bars.
    bx, by, bw, bh = 640, 50, 320, 320
    top = max(maxima.values()) * 1.15
    out.append(f'<text x="{bx+bw/2}" y="{by-8}" text-anchor="middle">max accepted msgs/s (W1, QoS 1); % = of bare mochi</text>')
    out.append(f'<line x1="{bx}" y1="{by+bh}" x2="{bx+bw}" y2="{by+bh}" stroke="#333"/>')
    n = len(names)
    slot = bw / max(n, 1)
    for i, name in enumerate(names):
        if name not in maxima:
            continue
        v = maxima[name]
        h = v / top * bh
        c = COLORS[i % len(COLORS)]
        x = bx + i * slot + slot * 0.15
        out.append(f'<rect x="{x:.1f}" y="{by+bh-h:.1f}" width="{slot*0.7:.1f}" height="{h:.1f}" fill="{c}"/>')
        label, ratio = f"{v:,.0f}", ""
        if name.startswith("imserver"):
            engine, _, run = name.split("/", 1)[1].partition(" ")
            want = f"(run with {engine})" + (f" {run}" if run else "")
            base = next((maxima[k] for k in maxima if k.endswith(want)), None)
            if base:
                ratio = f"{v/base:.0%}"
        out.append(f'<text x="{x+slot*0.35:.1f}" y="{by+bh-h-6:.1f}" text-anchor="middle" font-size="11">{escape(label)}</text>')
        if ratio:  # under the value, one line each, so neighbours do not overlap
            out.append(f'<text x="{x+slot*0.35:.1f}" y="{by+bh-h-20:.1f}" text-anchor="middle" font-size="10">{escape(ratio)}</text>')
        out.append(f'<text transform="translate({x+slot*0.35:.1f},{by+bh+14}) rotate(20)" font-size="11">{escape(name.replace(" (run with ", " ("))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="imbench -json files with W1 results")
    ap.add_argument("-o", "--output", default="-", help="SVG file to write (default stdout)")
    ap.add_argument("--title", default="imbench W1 single chat: p99 latency against load, and maximum throughput")
    args = ap.parse_args()
    series, maxima = load(args.results)
    if not series:
        sys.exit("no W1 results in " + ", ".join(args.results))
    svg = plot(series, maxima, args.title)
    if args.output == "-":
        sys.stdout.write(svg)
    else:
        with open(args.output, "w") as f:
            f.write(svg)


if __name__ == "__main__":
    main()
