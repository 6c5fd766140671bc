#!/usr/bin/env python3
"""Per-kernel breakdown of profiled decode steps from an `ncu --csv` log.

usage: decode_breakdown.py NCU_CSV STEPS [STEP_MS]

The log must hold the metrics gpu__time_duration.sum and dram__bytes_read.sum
(ncu --metrics ...). Kernels are grouped by short name and grid size (the grid
tells the matvec shapes apart); each row gives launches per step, us per step,
us per launch and the DRAM read rate. ncu serialises kernels, so the sum is
the step without overlap; STEP_MS (the step measured without the profiler)
gives what the gaps and overlaps amount to.
"""
import collections
import csv
import sys


def short(name):
    for junk in ('(anonymous namespace)::', '<unnamed>::', 'unnamed>::', 'rocmforge::gpu::', 'rocmforge::', 'void '):
        name = name.replace(junk, '')
    depth = 0
    for i, ch in enumerate(name):
        depth += ch == '<'
        depth -= ch == '>'
        if ch == '(' and depth == 0 and i > 0:
            return name[:i]
    return name


def main():
    path, steps = sys.argv[1], int(sys.argv[2])
    step_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    rows = [r for r in csv.reader(open(path)) if len(r) > 10]
    head, rows = rows[0], rows[1:]
    col = {k: head.index(k) for k in ('ID', 'Kernel Name', 'Metric Name', 'Metric Unit', 'Metric Value')}
    grid_i = head.index('Grid Size') if 'Grid Size' in head else None
    launches = collections.defaultdict(dict)  # ID -> metric -> value (+ name, grid)
    for r in rows:
        d = launches[r[col['ID']]]
        d['name'] = short(r[col['Kernel Name']])
        d['grid'] = r[grid_i] if grid_i is not None else ''
        v = float(r[col['Metric Value']].replace(',', ''))
        u = r[col['Metric Unit']]
        if r[col['Metric Name']] == 'gpu__time_duration.sum':
            d['us'] = v / 1e3 if u in ('ns', 'nsecond') else v * 1e3 if u in ('ms', 'msecond') else v
        elif r[col['Metric Name']] == 'dram__bytes_read.sum':
            scale = {'byte': 1, 'Kbyte': 1e3, 'Mbyte': 1e6, 'Gbyte': 1e9, 'KB': 1e3, 'MB': 1e6, 'GB': 1e9}
            d['bytes'] = v * scale.get(u, 1)
    groups = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for d in launches.values():
        g = groups[(d['name'][:90], d['grid'])]
        g[0] += 1
        g[1] += d.get('us', 0.0)
        g[2] += d.get('bytes', 0.0)
    total = sum(g[1] for g in groups.values()) / steps
    n = sum(g[0] for g in groups.values()) // steps
    print(f"per decode step (mean of {steps}, ncu, kernels serialised): {total:.1f} us in {n} kernels")
    if step_ms > 0:
        print(f"step without profiler {1e3 * step_ms:.1f} us: gaps/overlap = {1e3 * step_ms - total:+.1f} us")
    print("| kernel | grid | per step | us/step | % | us each | GB read each | TB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, grid), (c, us, b) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        each = us / c
        tbs = b / (us * 1e-6) / 1e12 if us > 0 else 0.0
        print(f"| {name} | {grid} | {c / steps:g} | {us / steps:.1f} | {100 * us / steps / total:.1f} | "
              f"{each:.2f} | {b / c / 1e9:.4f} | {tbs:.2f} |")


if __name__ == '__main__':
    main()
