#!/usr/bin/env python3
"""Cross-engine check: how often two engines pick the same argmax on the same file.

Reads two dumps (top1_agreement --dump A.json, DUMP=B.json node
llamacpp_top1_agreement.mjs) made from the same reference JSON, text and GGUF
files, and prints, per file present in both, the agreement of engine A's
argmax with engine B's at the greedy-step, prompt and text positions (the
measures of those programs). On F16 files the engines should agree at every
position; on quantized files both quantize the activations (Q8_K / Q8_0) and
sum in their own order, so a few near-ties may split.

With --topk REFERENCE.json instead, prints for each file of one dump how often
its argmax at the greedy steps lies within the reference's top-1/2/3/5 (the
float32 `topk_per_step` of the reference JSON): a looser criterion than top-1.

Usage: compare_argmax.py OURS.json LLAMACPP.json
       compare_argmax.py --topk REFERENCE.json DUMP.json
"""
import json
import sys


def positions(run, measure):
    n, n_prompt = len(run["argmax"]), run["n_prompt"]
    if n_prompt == 0:  # the free text: every position but the last predicts a token
        return range(n - 1) if measure == "text" else range(0)
    if measure == "greedy":
        return range(n_prompt - 1, n)
    if measure == "prompt":
        return range(n_prompt - 1)
    return range(0)


def in_reference_topk(ref, dump):
    for f in dump["files"]:
        counts, total = {1: 0, 2: 0, 3: 0, 5: 0}, 0
        runs = [r for r in f["runs"] if r["n_prompt"] > 0]
        if len(runs) != len(ref["generations"]):
            sys.exit(f"{f['file']}: {len(runs)} prompt runs vs {len(ref['generations'])} reference generations")
        for run, gen in zip(runs, ref["generations"]):
            for i, topk in zip(positions(run, "greedy"), gen["topk_per_step"]):
                ids = [t[0] for t in topk]
                total += 1
                for k in counts:
                    counts[k] += run["argmax"][i] in ids[:k]
        cells = [f"top-{k} {100 * c / total:.1f}%" for k, c in counts.items()]
        print(f"{dump['engine']} {f['file']}: argmax within reference " + ", ".join(cells) + f" of {total} greedy steps")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--topk":
        in_reference_topk(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])))
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = (json.load(open(p)) for p in sys.argv[1:])
    b_files = {f["file"]: f for f in b["files"]}
    for fa in a["files"]:
        fb = b_files.get(fa["file"])
        if fb is None:
            continue
        if len(fa["runs"]) != len(fb["runs"]):
            sys.exit(f"{fa['file']}: {len(fa['runs'])} vs {len(fb['runs'])} runs; same reference and text?")
        cells = []
        for measure in ("greedy", "prompt", "text"):
            agree = total = 0
            for ra, rb in zip(fa["runs"], fb["runs"]):
                if len(ra["argmax"]) != len(rb["argmax"]) or ra["n_prompt"] != rb["n_prompt"]:
                    sys.exit(f"{fa['file']}: runs differ in length; did the tokenizers disagree?")
                for i in positions(ra, measure):
                    total += 1
                    agree += ra["argmax"][i] == rb["argmax"][i]
            cells.append(f"{measure} {100 * agree / total:.1f}% ({agree}/{total})" if total else f"{measure} n/a")
        print(f"{a['engine']} vs {b['engine']} on {fa['file']}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
