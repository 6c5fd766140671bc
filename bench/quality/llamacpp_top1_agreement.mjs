// Top-1 agreement of quantized GGUF files with their F16 original, measured
// with llama.cpp (node-llama-cpp 3.22.1, CPU build) as an independent engine.
//
// For every reference prompt in REFERENCE.json the sequence
//   prompt_ids + greedy_ids[0..46]
// is evaluated teacher-forced in one batch, and llama.cpp's argmax of the raw
// logits is recorded at every position. Two measures are printed per file:
//   greedy: the 48 positions that predict the reference greedy ids
//           (what tests/unit/test_model_quantized.cc counts);
//   prompt: the positions inside the prompt (predicting prompt token i+1
//           from tokens 0..i), i.e. next-token predictions on the prompt text;
//   text:   with TEXT=FILE, every next-token prediction over that text
//           (tokenized by llama.cpp, BOS when the GGUF's add_bos_token says so).
// plus agreement of each file with the reference greedy ids, and, for the
// greedy steps, agreement split by the F16 top-1/top-2 logit gap (near-ties).
//
// Usage (llama.cpp installed as /work/shared/peers/README.md says):
//   LLAMACPP_DIR=/tmp/llamacpp node bench/quality/llamacpp_top1_agreement.mjs \
//       models/tiny-llama-spm.reference.json models/tiny-llama-spm-f16.gguf /tmp/q4km.gguf ...
// The first .gguf is the F16 baseline; each further one is compared with it.
// DUMP=FILE writes every file's per-position argmax as JSON (the format of
// top1_agreement --dump), for compare_argmax.py.
// Prints one human-readable line per (file, measure) and a JSON summary line.
import fs from "fs";
import path from "path";
import {createRequire} from "module";
import {pathToFileURL} from "url";

const llamacppDir = process.env.LLAMACPP_DIR || "/tmp/llamacpp";
const require = createRequire(path.join(llamacppDir, "package.json"));
const {getLlama} = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);

const [,, refPath, f16Path, ...quantPaths] = process.argv;
const text = process.env.TEXT ? fs.readFileSync(process.env.TEXT, "utf8") : "";
if (!refPath || !f16Path) {
  console.error("usage: node llamacpp_top1_agreement.mjs REFERENCE.json F16.gguf [QUANT.gguf ...]");
  process.exit(2);
}
const threads = Number(process.env.THREADS || 1);  // 1 thread: see peers/README.md
const ref = JSON.parse(fs.readFileSync(refPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});

// argmax[] and top-1/top-2 gap[] at every position of `seqIds`, evaluated in a fresh context.
async function evaluateSequence(model, seqIds) {
  const ctx = await model.createContext({contextSize: 512, batchSize: 512, threads, sequences: 1});
  const seq = ctx.getSequence();
  const input = seqIds.map((t) => [t, {generateNext: {logits: {filter: {tokens: [], includeTop: 2}}}}]);
  const res = await seq.controlledEvaluate(input);
  const argmax = [], gap = [];
  for (let i = 0; i < seqIds.length; ++i) {
    const logits = res[i]?.next?.logits;
    if (!logits || logits.size < 2) throw new Error(`no logits from llama.cpp at position ${i}`);
    // Do not rely on the map's order: pick the max explicitly.
    const top = [...logits.entries()].sort((a, b) => b[1] - a[1]);
    argmax.push(Number(top[0][0]));
    gap.push(top[0][1] - top[1][1]);
  }
  await ctx.dispose();
  return {argmax, gap};
}

// One run per reference generation, then one for the text (greedy: [] marks it).
async function evaluateFile(modelPath) {
  const model = await llama.loadModel({modelPath});
  const out = [];
  for (const gen of ref.generations) {
    const seqIds = gen.prompt_ids.concat(gen.greedy_ids.slice(0, -1));
    const r = await evaluateSequence(model, seqIds);
    out.push({...r, nPrompt: gen.prompt_ids.length, greedy: gen.greedy_ids});
  }
  if (text) {
    const addBos = model.fileInfo.metadata?.tokenizer?.ggml?.add_bos_token === true;
    const ids = (addBos ? [model.tokens.bos] : []).concat(Array.from(model.tokenize(text, false))).map(Number);
    const r = await evaluateSequence(model, ids);
    out.push({...r, nPrompt: 0, greedy: []});
  }
  await model.dispose();
  return out;
}

// Positions that predict the greedy ids: n_prompt-1 .. end; prompt positions: 0 .. n_prompt-2.
// Text: every position but the last (which predicts nothing).
function positions(run, measure) {
  const n = run.argmax.length;
  const isText = run.greedy.length === 0;
  const idx = [];
  if (measure === "text" && isText) for (let i = 0; i + 1 < n; ++i) idx.push(i);
  else if (measure === "greedy" && !isText) for (let i = run.nPrompt - 1; i < n; ++i) idx.push(i);
  else if (measure === "prompt" && !isText) for (let i = 0; i < run.nPrompt - 1; ++i) idx.push(i);
  return idx;
}

function agreement(a, b, measure, gapFilter) {
  let agree = 0, total = 0;
  a.forEach((run, g) => {
    for (const i of positions(run, measure)) {
      if (gapFilter && !gapFilter(b[g].gap[i])) continue;
      ++total;
      agree += run.argmax[i] === b[g].argmax[i];
    }
  });
  return {agree, total};
}

function referenceAgreement(runs) {
  let agree = 0, total = 0;
  for (const run of runs) {
    positions(run, "greedy").forEach((i, k) => { ++total; agree += run.argmax[i] === run.greedy[k]; });
  }
  return {agree, total};
}

const pct = ({agree, total}) => total ? `${(100 * agree / total).toFixed(1)}% (${agree}/${total})` : "n/a (0/0)";
const dump = {engine: "llama.cpp", files: []};
const dumpJson = (name, runs) => ({file: name, runs: runs.map((r) => ({n_prompt: r.nPrompt, argmax: r.argmax}))});
const summary = {reference: path.basename(refPath), f16: path.basename(f16Path), threads, files: []};

const f16 = await evaluateFile(f16Path);
const f16Ref = referenceAgreement(f16);
dump.files.push(dumpJson(path.basename(f16Path), f16));
console.log(`[llama.cpp] ${path.basename(f16Path)}: argmax = reference greedy id at ${pct(f16Ref)} steps`);
const nearTie = agreement(f16, f16, "greedy", (g) => g < 0.5).total;
console.log(`[llama.cpp] ${path.basename(f16Path)}: greedy steps with top-1/top-2 logit gap < 0.5: ${nearTie}`);
if (text) console.log(`[llama.cpp] ${path.basename(f16Path)}: text of ${f16[f16.length - 1].argmax.length} tokens`);
summary.f16_vs_reference = f16Ref;
summary.f16_near_ties_lt_0_5 = nearTie;

for (const qPath of quantPaths) {
  const q = await evaluateFile(qPath);
  const row = {
    file: path.basename(qPath),
    greedy: agreement(q, f16, "greedy"),
    prompt: agreement(q, f16, "prompt"),
    text: agreement(q, f16, "text"),
    vs_reference: referenceAgreement(q),
    greedy_gap_lt_0_5: agreement(q, f16, "greedy", (g) => g < 0.5),
    greedy_gap_ge_0_5: agreement(q, f16, "greedy", (g) => g >= 0.5),
  };
  const name = path.basename(qPath);
  console.log(`[llama.cpp] ${name}: top-1 agreement with F16, greedy steps ${pct(row.greedy)}, ` +
              `prompt positions ${pct(row.prompt)}, text ${pct(row.text)}; = reference greedy id ${pct(row.vs_reference)}; ` +
              `greedy steps with F16 gap < 0.5 ${pct(row.greedy_gap_lt_0_5)}, >= 0.5 ${pct(row.greedy_gap_ge_0_5)}`);
  summary.files.push(row);
  dump.files.push(dumpJson(name, q));
}
if (process.env.DUMP) fs.writeFileSync(process.env.DUMP, JSON.stringify(dump) + "\n");
console.log(JSON.stringify(summary));
process.exit(0);
