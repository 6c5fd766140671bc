// End-to-end GPU decode and prefill of a Llama-3-8B-shaped model with random
// weights, the way `rocmforge make-model` writes it (gguf::WriteRandomModel,
// generated on the machine that runs the benchmark).
//
//   bench_gpu_decode FILE_TYPE DIR      e.g. bench_gpu_decode Q4_K_M /tmp
//   bench_gpu_decode FILE_TYPE DIR profile
//       decode steps only: host-time split of a step (Forward's enqueue vs
//       Sample = graph launch + device work + sampler + sync), then two steps
//       between ProfilerStart/Stop for `ncu --profile-from-start off`.
//   bench_gpu_decode FILE_TYPE DIR sample
//       tg128 only: greedy, and T 0.7 / top-p 0.9 (near-flat rows on this
//       random model) with the sampler's wide-row refinement off, on, and on
//       with batched row passes (gpu::SampleConfig).
//   bench_gpu_decode FILE_TYPE DIR batch N CTX [profile | profile-chunk]
//       batched decode as the worker runs it: N sequences with CTX tokens
//       already in the KV cache (prefilled untimed), then steps of N tokens
//       (BeginStep + Model::Forward + greedy Sample of N rows). Prints the mean
//       host step time split into Forward's enqueue vs Sample (which waits for
//       the device), with auto graphs on and off, with a Synchronize after
//       Forward (sampler alone), with one extra 64-token prefill chunk of
//       another sequence in every step (the worker's default
//       --max-prefill-with-decodes 64), N swept over 1..N, and the N-step
//       captured once as a graph and replayed (the launch-free floor).
//       `profile` / `profile-chunk`: only two N-steps (without / with the
//       chunk) between ProfilerStart/Stop, after three warm-up steps.
//
// Prints pp512 (prompt tok/s, one 512-token step), tg128 (128 decode steps at
// batch 1 from an empty context, greedy GPU sampling included) and the
// fraction of the memory-bandwidth limit reached at batch 1: bytes read per
// token (every weight but the embedding table, which is read one row at a time,
// plus the mean KV cache read) over the measured device copy bandwidth.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/gpu/bench_timer.h"
#include "engine/backend/gpu/gpu_backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/model_shapes.h"
#include "engine/gguf/quant_mix.h"
#include "engine/gguf/random_model.h"
#include "engine/common/status_macros.h"
#include "engine/model/model.h"

using namespace rocmforge;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
  return 1;
}

StepBatch Seq(const std::vector<int32_t>& tokens, int32_t start, const std::vector<int32_t>& table,
              int32_t block) {
  StepBatch b;
  BatchSeq s;
  s.n_tokens = static_cast<int32_t>(tokens.size());
  s.kv_len = start + s.n_tokens;
  s.block_table = table;
  for (int32_t i = 0; i < s.n_tokens; ++i) {
    const int32_t pos = start + i;
    b.tokens.push_back(tokens[i]);
    b.positions.push_back(pos);
    b.slots.push_back(table[pos / block] * block + pos % block);
  }
  b.logit_rows.push_back(s.n_tokens - 1);
  b.seqs.push_back(s);
  return b;
}

// tg128: 128 decode steps of one sequence from position 0, each token sampled
// on the GPU with `sp` (seed 42) and fed back; three runs, the best of the
// last two in *best (seconds). RF_TG_START=P (timing at depth only): from
// position P instead (0..kTgPositions - 128; the cache's earlier positions
// hold whatever is there), so the steps attend over P+1..P+128 keys.
constexpr int32_t kTgPositions = 4352;  // the single-sequence KV cache (~0.57 GB for the 8B shape)
int32_t TgStart() {
  const char* e = std::getenv("RF_TG_START");
  const int32_t p = e != nullptr ? std::atoi(e) : 0;
  return std::clamp(p, 0, kTgPositions - 128);
}
absl::Status TimeTg128(Model& model, GpuBackend* gpu, int32_t vocab, const SamplingParams& sp,
                       const std::vector<int32_t>& table, int32_t block, double* best) {
  *best = 1e30;
  double forward_s = 0.0;  // host time in Forward (recording the step), the timed reps
  std::vector<double> fwd_us;  // each timed token's Forward, us (RF_HOST_TIMES)
  const bool host_times = std::getenv("RF_HOST_TIMES") != nullptr;
  const int32_t start = TgStart();
  gpu->SetStepGapProbe(host_times);
  for (int rep = 0; rep < 3; ++rep) {
    int32_t tok = 1;
    auto a = Clock::now();
    for (int32_t pos = start; pos < start + 128; ++pos) {
      const auto f0 = Clock::now();
      auto logits = model.Forward(Seq({tok}, pos, table, block));
      if (rep > 0) {
        forward_s += Seconds(f0);
        fwd_us.push_back(1e6 * Seconds(f0));
      }
      if (!logits.ok()) return logits.status();
      SampleRequest rq;
      rq.params = sp;
      rq.params.seed = 42;
      rq.step = pos;
      SampleResult r;
      RF_RETURN_IF_ERROR(gpu->Sample(*logits, 1, vocab, &rq, &r));
      tok = r.token >= 0 && r.token < vocab ? r.token : 1;  // (garbage logits: RF_SKIP_SETS)
    }
    if (rep > 0) *best = std::min(*best, Seconds(a));
  }
  if (host_times) {
    std::sort(fwd_us.begin(), fwd_us.end());
    std::printf(" [host Forward %.1f us/token: min %.1f, median %.1f, p90 %.1f, max %.1f]", 1e6 * forward_s / 256.0,
                fwd_us.front(), fwd_us[fwd_us.size() / 2], fwd_us[fwd_us.size() * 9 / 10], fwd_us.back());
    std::vector<float> gaps = gpu->TakeStepGapsUs();
    if (!gaps.empty()) {
      std::sort(gaps.begin(), gaps.end());
      double sum = 0.0;
      for (float g : gaps) sum += g;
      std::printf(" [device idle between steps, us: mean %.1f, min %.1f, median %.1f, p90 %.1f]", sum / gaps.size(),
                  gaps.front(), gaps[gaps.size() / 2], gaps[gaps.size() * 9 / 10]);
    }
    gpu->SetStepGapProbe(false);
  }
  return absl::OkStatus();
}

// ---- batch mode ----------------------------------------------------------

// The sequences of one batched-decode experiment: `n_dec` decoding sequences
// with their own block ranges, plus one prefilling sequence (`chunk`).
struct BatchSetup {
  int32_t n_dec = 0, ctx = 0, block = 16, blocks_per_seq = 0;
  int32_t chunk_blocks = 0;  // the prefilling sequence's blocks follow the decoders'
  int32_t chunk_tokens = 64;  // size of the prefill chunk of steps that carry one
  std::vector<int32_t> last_token;  // per decoding sequence: the token it feeds next

  std::vector<int32_t> Table(int32_t seq, int32_t kv_len) const {  // as the engine: kv_len's blocks
    std::vector<int32_t> t((kv_len + block - 1) / block);
    for (size_t i = 0; i < t.size(); ++i) t[i] = seq * blocks_per_seq + static_cast<int32_t>(i);
    return t;
  }
  // One sequence's tokens at positions start.. appended to `b` (logit row if `sample`).
  void Add(StepBatch* b, int32_t seq, const std::vector<int32_t>& tokens, int32_t start,
           bool sample) const {
    BatchSeq s;
    s.token_start = b->n_tokens();
    s.n_tokens = static_cast<int32_t>(tokens.size());
    s.kv_len = start + s.n_tokens;
    s.block_table = Table(seq, s.kv_len);
    for (int32_t i = 0; i < s.n_tokens; ++i) {
      const int32_t pos = start + i;
      b->tokens.push_back(tokens[i]);
      b->positions.push_back(pos);
      b->slots.push_back(s.block_table[pos / block] * block + pos % block);
    }
    if (sample) b->logit_rows.push_back(s.token_start + s.n_tokens - 1);
    b->seqs.push_back(std::move(s));
  }
  // Decode step `step` of the first `n` sequences (each at position ctx + step),
  // optionally with a `chunk_tokens` prefill chunk of the extra sequence
  // (positions 0.., recomputed every step: the same work as any such chunk there).
  StepBatch DecodeStep(int32_t n, int32_t step, bool chunk) const {
    StepBatch b;
    for (int32_t s = 0; s < n; ++s) Add(&b, s, {last_token[s]}, ctx + step, true);
    if (chunk) {
      std::vector<int32_t> toks(chunk_tokens);
      for (int32_t i = 0; i < chunk_tokens; ++i) toks[i] = 1000 + i;
      Add(&b, n_dec, toks, 0, false);
    }
    return b;
  }
};

struct StepTimes {
  double enqueue_s = 0.0, wait_s = 0.0, sample_s = 0.0;  // wait_s: Synchronize after Forward
  int steps = 0;
  void Print(const char* what) const {
    const double k = 1e3 / steps;
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", what, k * (enqueue_s + wait_s + sample_s),
                k * enqueue_s, k * wait_s, k * sample_s);
  }
};

// Runs `warm` untimed then `timed` timed steps of `n` decoding sequences
// (+ chunk); with `sync_after_forward` the device is waited for before Sample,
// so Sample's time is the sampler alone.
absl::Status RunSteps(Model& model, GpuBackend* gpu, BatchSetup* bs, int32_t n, bool chunk,
                      bool sync_after_forward, int warm, int timed, StepTimes* t,
                      bool profile = false) {
  const int32_t vocab = model.config().n_vocab;
  std::vector<SampleRequest> req(n);
  std::vector<SampleResult> res(n);
  *t = StepTimes{};
  for (int step = 0; step < warm + timed; ++step) {
    if (profile && step == warm) gpu::ProfilerStart();
    const StepBatch b = bs->DecodeStep(n, step, chunk);
    for (int32_t r = 0; r < n; ++r) {
      req[r].params.temperature = 0.0f;
      req[r].step = static_cast<uint64_t>(step);
    }
    auto a = Clock::now();
    auto logits = model.Forward(b);
    RF_RETURN_IF_ERROR(logits.status());
    const double enq = Seconds(a);
    a = Clock::now();
    if (sync_after_forward) RF_RETURN_IF_ERROR(gpu->Synchronize());
    const double wait = Seconds(a);
    a = Clock::now();
    RF_RETURN_IF_ERROR(gpu->Sample(*logits, n, vocab, req.data(), res.data()));
    const double smp = Seconds(a);
    for (int32_t r = 0; r < n; ++r) bs->last_token[r] = res[r].token;
    if (step >= warm) {
      t->enqueue_s += enq;
      t->wait_s += wait;
      t->sample_s += smp;
      ++t->steps;
    }
  }
  if (profile) gpu::ProfilerStop();
  return absl::OkStatus();
}

// The N-sequence step captured once as an explicit graph and replayed: what a
// step costs with no per-launch host work (same positions every replay).
absl::Status RunReplayed(Model& model, GpuBackend* gpu, BatchSetup* bs, int32_t n, int timed,
                         StepTimes* t) {
  const int32_t vocab = model.config().n_vocab;
  std::vector<SampleRequest> req(n);
  std::vector<SampleResult> res(n);
  for (auto& r : req) r.params.temperature = 0.0f;
  const StepBatch b = bs->DecodeStep(n, 0, false);
  RF_RETURN_IF_ERROR(model.Forward(b).status());  // same shapes: nothing grows inside the capture
  RF_RETURN_IF_ERROR(gpu->Synchronize());
  RF_RETURN_IF_ERROR(gpu->BeginGraphCapture());
  auto logits = model.Forward(b);
  const absl::Status end = gpu->EndGraphCapture();
  RF_RETURN_IF_ERROR(logits.status());
  RF_RETURN_IF_ERROR(end);
  *t = StepTimes{};
  for (int step = 0; step < 3 + timed; ++step) {
    auto a = Clock::now();
    RF_RETURN_IF_ERROR(gpu->ReplayGraph());
    const double enq = Seconds(a);
    a = Clock::now();
    RF_RETURN_IF_ERROR(gpu->Sample(*logits, n, vocab, req.data(), res.data()));
    const double smp = Seconds(a);
    if (step >= 3) {
      t->enqueue_s += enq;
      t->sample_s += smp;
      ++t->steps;
    }
  }
  return absl::OkStatus();
}

int BatchMain(const gguf::GgufFile& file, GpuBackend* gpu, int32_t n, int32_t ctx,
              const std::string& profile) {
  BatchSetup bs;
  bs.n_dec = n;
  bs.ctx = ctx;
  constexpr int32_t kMaxSteps = 64;  // positions ctx .. ctx + kMaxSteps - 1 per decoder
  bs.blocks_per_seq = (ctx + kMaxSteps + bs.block - 1) / bs.block;
  constexpr int32_t kMaxChunk = 448;  // the largest chunk swept below
  bs.chunk_blocks = kMaxChunk / bs.block;
  bs.last_token.assign(n, 1);
  constexpr int32_t kPrefillChunk = 512;
  auto t0 = Clock::now();
  auto model = Model::Load(file, gpu, std::max(kPrefillChunk, n + kMaxChunk));
  if (!model.ok()) return Fail(model.status());
  const ModelConfig& c = (*model)->config();
  std::printf("loaded on %s in %.1f s\n", gpu->device_name().c_str(), Seconds(t0));
  const int32_t n_blocks = n * bs.blocks_per_seq + bs.chunk_blocks;
  if (auto st = gpu->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, bs.block, n_blocks}); !st.ok()) {
    return Fail(st);
  }
  // As the engine does after sizing its KV pool (the f16 weight cache: chunk
  // steps from the dense crossover run on resident f16 weights).
  const size_t cache_bytes = gpu->UseSpareMemory(gpu->AvailableMemoryBytes());
  std::printf("f16 weight cache in spare memory (the engine's default): %s (%.1f GB)\n",
              cache_bytes > 0 ? "on" : "off", static_cast<double>(cache_bytes) / 1e9);
  // Prefill: each sequence's ctx tokens in chunks of <= 512 (untimed for the steps).
  std::mt19937 rng(7);
  t0 = Clock::now();
  for (int32_t s = 0; s < n; ++s) {
    for (int32_t start = 0; start < ctx; start += kPrefillChunk) {
      std::vector<int32_t> toks(std::min(kPrefillChunk, ctx - start));
      for (auto& tk : toks) tk = static_cast<int32_t>(rng() % c.n_vocab);
      StepBatch b;
      bs.Add(&b, s, toks, start, true);
      if (auto l = (*model)->Forward(b); !l.ok()) return Fail(l.status());
    }
    bs.last_token[s] = static_cast<int32_t>(rng() % c.n_vocab);
  }
  if (auto st = gpu->Synchronize(); !st.ok()) return Fail(st);
  std::printf("prefilled %d sequences x %d tokens in %.2f s\n", n, ctx, Seconds(t0));

  StepTimes t;
  if (!profile.empty()) {  // two steps for ncu
    const bool chunk = profile == "profile-chunk";
    auto st = RunSteps(**model, gpu, &bs, n, chunk, false, 3, 2, &t, true);
    if (!st.ok()) return Fail(st);
    std::printf("profiled 2 steps of %d sequences x 1 token%s at context %d (under the profiler: %.2f ms/step)\n",
                n, chunk ? " + a 64-token prefill chunk" : "", ctx, 1e3 * (t.enqueue_s + t.sample_s) / t.steps);
    return 0;
  }
  constexpr int kWarm = 3, kTimed = 20;
  std::printf("\nbatched decode, %d sequences at context %d, mean of %d steps (host clock, ms):\n", n,
              ctx, kTimed);
  std::printf("| step | total | Forward enqueue | Synchronize | Sample |\n|---|---|---|---|---|\n");
  char what[160];
  // The int8 MMQ GEMM (GemmConfig::narrow = 3) against the automatic choice
  // (0) and the automatic choice without MMQ (4), in turn, twice (noise).
  {
    const gpu::GemmConfig gemm_saved = gpu::GetGemmConfig();
    for (int rep = 0; rep < 2; ++rep) {
      for (bool chunk : {false, true}) {
        for (int narrow : {0, 3, 4}) {
          gpu::GemmConfig gc = gemm_saved;
          gc.narrow = narrow;
          gpu::SetGemmConfig(gc);
          if (auto st = RunSteps(**model, gpu, &bs, n, chunk, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
          std::snprintf(what, sizeof what, "N=%d%s, GEMM narrow %d (%s), rep %d", n,
                        chunk ? " + 64-token prefill chunk" : "", narrow,
                        narrow == 3 ? "MMQ" : narrow == 4 ? "auto without MMQ" : "auto", rep);
          t.Print(what);
        }
      }
    }
    gpu::SetGemmConfig(gemm_saved);
  }
  // RMSNorm + Q8_K quantization fused for batches (GpuBackend::kFuseNormQuantizeKBatch:
  // the MMQ inputs Q/K/V and gate/up) off and on, in turn, twice.
  for (int rep = 0; rep < 2; ++rep) {
    for (bool chunk : {false, true}) {
      for (bool on : {false, true}) {
        constexpr unsigned kBit = GpuBackend::kFuseNormQuantizeKBatch;
        gpu->SetFusions(on ? GpuBackend::kDefaultFusions | kBit : GpuBackend::kDefaultFusions & ~kBit);
        if (auto st = RunSteps(**model, gpu, &bs, n, chunk, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
        std::snprintf(what, sizeof what, "N=%d%s, norm + Q8_K fusion for batches %s, rep %d", n,
                      chunk ? " + 64-token prefill chunk" : "", on ? "on" : "off", rep);
        t.Print(what);
      }
    }
  }
  gpu->SetFusions(GpuBackend::kDefaultFusions);
  // The K-split GEMM outputs zeroed by the producer of the GEMM's input
  // (GpuBackend::SetProducerZeroing) or by a zeroing kernel before the GEMM,
  // in turn, twice.
  for (int rep = 0; rep < 2; ++rep) {
    for (bool chunk : {false, true}) {
      for (bool on : {false, true}) {
        gpu->SetProducerZeroing(on);
        if (auto st = RunSteps(**model, gpu, &bs, n, chunk, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
        std::snprintf(what, sizeof what, "N=%d%s, producer zeroing %s, rep %d", n,
                      chunk ? " + 64-token prefill chunk" : "", on ? "on" : "off", rep);
        t.Print(what);
      }
    }
  }
  gpu->SetProducerZeroing(true);
  struct Variant { bool graphs, chunk, sync; const char* name; };
  for (const Variant& v : {Variant{true, false, false, "auto graphs on"},
                           Variant{false, false, false, "auto graphs off"},
                           Variant{true, false, true, "sync after Forward"},
                           Variant{true, true, false, "+ 64-token prefill chunk"},
                           Variant{true, true, true, "+ 64-token prefill chunk, sync after Forward"}}) {
    gpu->SetAutoGraphs(v.graphs);
    if (auto st = RunSteps(**model, gpu, &bs, n, v.chunk, v.sync, kWarm, kTimed, &t); !st.ok()) return Fail(st);
    std::snprintf(what, sizeof what, "N=%d %s", n, v.name);
    t.Print(what);
  }
  gpu->SetAutoGraphs(true);
  // Grouped batched GEMMs (Q/K/V, gate/up in one launch; GpuBackend::SetGemmGrouping)
  // off and on again, and the dense path forced from 65 tokens (the chunk step's 96).
  struct Switch { bool grouping; int dense_min_n; bool chunk; const char* name; };
  const gpu::DenseGemmConfig dense_saved = gpu::GetDenseGemmConfig();
  for (const Switch& v : {Switch{false, 0, false, "GEMM grouping off"},
                          Switch{false, 0, true, "+ 64-token prefill chunk, GEMM grouping off"},
                          Switch{true, 0, false, "GEMM grouping on"},
                          Switch{true, 0, true, "+ 64-token prefill chunk, GEMM grouping on"},
                          Switch{true, 65, true, "+ 64-token prefill chunk, grouping on, dense from 65 tokens"},
                          Switch{false, 65, true, "+ 64-token prefill chunk, grouping off, dense from 65 tokens"}}) {
    gpu->SetGemmGrouping(v.grouping);
    gpu::DenseGemmConfig dc = dense_saved;
    if (v.dense_min_n > 0) dc.min_n = v.dense_min_n;
    gpu::SetDenseGemmConfig(dc);
    if (auto st = RunSteps(**model, gpu, &bs, n, v.chunk, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
    std::snprintf(what, sizeof what, "N=%d %s", n, v.name);
    t.Print(what);
  }
  gpu::SetDenseGemmConfig(dense_saved);
  gpu->SetGemmGrouping(true);
  // Step time against the chunk size: within one GEMM token tile (65..128
  // tokens) a bigger chunk should cost little (what the scheduler's
  // step_token_sizes rely on).
  for (int32_t k : {16, 32, 48, 64, 80, 96}) {
    if (k <= 0 || k > kMaxChunk) continue;
    bs.chunk_tokens = k;
    if (auto st = RunSteps(**model, gpu, &bs, n, true, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
    std::snprintf(what, sizeof what, "N=%d + %d-token prefill chunk (%d tokens)", n, k, n + k);
    t.Print(what);
  }
  // Larger chunks (a larger prefill cap in the scheduler) against the dense
  // path's crossover: the default (kDenseMinTokensResident with the cache's
  // resident f16 weights, else kDenseMinTokens) and forced lower ones. Per prefill token, a chunk
  // step costs (step - the plain N-decode step) / k.
  for (int min_n : {0, 96, 128}) {
    gpu::DenseGemmConfig dc = dense_saved;
    if (min_n > 0) dc.min_n = min_n;
    gpu::SetDenseGemmConfig(dc);
    for (int32_t k : {96, 128, 160, 224, 288, 416}) {
      if (k > kMaxChunk) continue;
      bs.chunk_tokens = k;
      if (auto st = RunSteps(**model, gpu, &bs, n, true, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
      std::snprintf(what, sizeof what, "N=%d + %d-token prefill chunk (%d tokens), dense from %d", n, k, n + k,
                    min_n > 0 ? min_n : cache_bytes > 0 ? gpu::DenseMinTokensResident() : gpu::kDenseMinTokens);
      t.Print(what);
    }
  }
  gpu::SetDenseGemmConfig(dense_saved);
  bs.chunk_tokens = 64;
  // Step time against batch size (automatic graphs up to
  // GpuBackend::kGraphMaxTokens tokens), and past that with graphs up to 32
  // tokens (a step size that repeats: what a graph saves at best).
  for (int32_t m : {1, 2, 4, 8, 9, 12, 16, 24, 32}) {
    if (m > n) break;
    for (bool sync : {false, true}) {
      if (auto st = RunSteps(**model, gpu, &bs, m, false, sync, kWarm, kTimed, &t); !st.ok()) return Fail(st);
      std::snprintf(what, sizeof what, "N=%d%s", m, sync ? " sync after Forward" : "");
      t.Print(what);
    }
    if (m > GpuBackend::kGraphMaxTokens) {
      gpu->SetGraphMaxTokens(32);
      if (auto st = RunSteps(**model, gpu, &bs, m, false, false, kWarm, kTimed, &t); !st.ok()) return Fail(st);
      gpu->SetGraphMaxTokens(GpuBackend::kGraphMaxTokens);
      std::snprintf(what, sizeof what, "N=%d, graphs up to 32 tokens", m);
      t.Print(what);
    }
  }
  // Last: an explicit capture (if it fails, the backend may be left unusable).
  if (auto st = RunReplayed(**model, gpu, &bs, n, kTimed, &t); !st.ok()) {
    std::printf("| N=%d one captured graph, replayed | failed: %s | | | |\n", n,
                std::string(st.message()).c_str());
  } else {
    std::snprintf(what, sizeof what, "N=%d one captured graph, replayed (enqueue = graph launch)", n);
    t.Print(what);
  }
  return 0;
}

absl::StatusOr<int> ParseInt(absl::string_view t) {
  int v = 0;
  if (!absl::SimpleAtoi(t, &v)) return absl::InvalidArgumentError(absl::StrCat("not a number: ", t));
  return v;
}

// The integers of a slash-separated env value ("16/8/8"), min_fields..max_fields
// of them; `want` names the form in the error.
absl::StatusOr<std::vector<int>> SlashInts(absl::string_view t, size_t min_fields, size_t max_fields,
                                           const char* want) {
  std::vector<absl::string_view> f = absl::StrSplit(t, '/');
  if (f.size() < min_fields || f.size() > max_fields) {
    return absl::InvalidArgumentError(absl::StrCat("want ", want, ": ", t));
  }
  std::vector<int> v;
  for (absl::string_view x : f) {
    RF_ASSIGN_OR_RETURN(const int i, ParseInt(x));
    v.push_back(i);
  }
  return v;
}

// RF_PREFETCH's "A/N/S[/C]": MB of weight prefetch during attention / after a
// norm / after SwiGLU (GpuBackend::SetWeightPrefetch) and KB a prefetching
// thread asks for (gpu::SetL2PrefetchChunk; 0 = the one-block kernel; absent:
// `chunk_if_absent` bytes).
absl::Status ApplyWeightPrefetch(GpuBackend* gpu, absl::string_view t, uint32_t chunk_if_absent) {
  RF_ASSIGN_OR_RETURN(const std::vector<int> v, SlashInts(t, 3, 4, "A/N/S[/C]"));
  gpu->SetWeightPrefetch({size_t(v[0]) << 20, size_t(v[1]) << 20, size_t(v[2]) << 20});
  gpu::SetL2PrefetchChunk(v.size() == 4 ? static_cast<uint32_t>(v[3]) << 10 : chunk_if_absent);
  return absl::OkStatus();
}

// RF_SHAPES values: "-" (every shape automatic) or "CLASS=TPRxRPT[s],..."
// (gpu::MatVecConfig::shape: CLASS a ShapeClass number, "s" for single slices
// instead of pairs), e.g. "1=32x2,4=64x2".
absl::Status ApplyShapes(absl::string_view t, gpu::MatVecConfig* c) {
  for (gpu::MatVecConfig::Shape& o : c->shape) o = {};
  if (t == "-") return absl::OkStatus();
  for (absl::string_view item : absl::StrSplit(t, ',', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, '=');
    int k = -1;
    if (!absl::SimpleAtoi(kv.first, &k) || k < 0 || k >= gpu::MatVecConfig::kShapeClasses) {
      return absl::InvalidArgumentError(absl::StrCat("bad class in '", item, "'"));
    }
    gpu::MatVecConfig::Shape& o = c->shape[k];
    absl::string_view v = kv.second;
    o.pairs = !absl::ConsumeSuffix(&v, "s");
    const std::vector<absl::string_view> tr = absl::StrSplit(v, 'x');
    if (tr.size() != 2 || !absl::SimpleAtoi(tr[0], &o.tpr) || !absl::SimpleAtoi(tr[1], &o.rpt) ||
        (o.tpr != 32 && o.tpr != 64 && o.tpr != 128) || (o.rpt != 1 && o.rpt != 2 && o.rpt != 4)) {
      return absl::InvalidArgumentError(absl::StrCat("bad shape in '", item, "': TPR 32/64/128, RPT 1/2/4"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  const bool profile = argc == 4 && std::string(argv[3]) == "profile";
  const bool batch = (argc == 6 || argc == 7) && std::string(argv[3]) == "batch";
  // `sample`: tg128 only, greedy vs sampled (T 0.7, top-p 0.9: near-flat rows on
  // the random model) with the sampler's wide-row refinement on and off.
  const bool sample_mode = argc == 4 && std::string(argv[3]) == "sample";
  if (argc != 3 && !profile && !batch && !sample_mode) {
    std::fprintf(stderr,
                 "usage: bench_gpu_decode FILE_TYPE DIR [profile | sample | batch N CTX [profile | profile-chunk]]\n");
    return 2;
  }
  int32_t batch_n = 0, batch_ctx = 0;
  std::string batch_profile;
  if (batch) {
    batch_n = std::atoi(argv[4]);
    batch_ctx = std::atoi(argv[5]);
    if (argc == 7) batch_profile = argv[6];
    if (batch_n < 1 || batch_n > 256 || batch_ctx < 1 || batch_ctx > 8192 ||
        (argc == 7 && batch_profile != "profile" && batch_profile != "profile-chunk")) {
      std::fprintf(stderr, "batch N CTX: N in 1..256, CTX in 1..8192, then profile or profile-chunk\n");
      return 2;
    }
  }
  FileType ftype;
  if (!quant::ParseFileType(argv[1], &ftype)) {
    std::fprintf(stderr, "unknown file type %s\n", argv[1]);
    return 2;
  }
  auto shape = gguf::FindShape("llama3-8b");
  if (!shape.ok()) return Fail(shape.status());
  const std::string path = std::string(argv[2]) + "/llama3-8b-" + argv[1] + ".gguf";
  if (!std::filesystem::exists(path)) {
    auto t0 = Clock::now();
    gguf::RandomModelOptions opt;
    opt.progress = false;
    absl::Status st = gguf::WriteRandomModel(*shape, ftype, path, opt);
    if (!st.ok()) return Fail(st);
    std::printf("made %s in %.1f s\n", path.c_str(), Seconds(t0));
  }
  // RF_MATVEC="THREADS_PER_ROW,PAIRS[,ROWS_PER_THREAD[,PREFETCH_BYTES]]" picks the
  // batch-1 matvec shape (gpu::MatVecConfig); RF_PDL=0 turns PDL off (gpu::SetPdl).
  if (const char* mv = std::getenv("RF_MATVEC"); mv != nullptr) {
    gpu::MatVecConfig mc;
    int pairs = 0;
    if (std::sscanf(mv, "%d,%d,%d,%d", &mc.threads_per_row, &pairs, &mc.rows_per_thread,
                    &mc.prefetch_bytes) >= 1) {
      mc.pairs = pairs != 0;
      gpu::SetMatVecConfig(mc);
    }
    mc = gpu::GetMatVecConfig();
    std::printf("matvec config: %d threads per row (0 = auto), pairs %d, rows per thread %d, "
                "prefetch %d\n", mc.threads_per_row, mc.pairs ? 1 : 0, mc.rows_per_thread,
                mc.prefetch_bytes);
  }
  if (const char* pdl = std::getenv("RF_PDL"); pdl != nullptr) gpu::SetPdl(std::atoi(pdl) != 0);
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return Fail(file.status());
  auto be = GpuBackend::Create(0);
  if (!be.ok()) return Fail(be.status());
  GpuBackend* gpu = be->get();
  if (batch) return BatchMain(**file, gpu, batch_n, batch_ctx, batch_profile);
  auto t0 = Clock::now();
  auto model = Model::Load(**file, gpu, 512);
  if (!model.ok()) return Fail(model.status());
  std::printf("loaded on %s in %.1f s\n", gpu->device_name().c_str(), Seconds(t0));
  const ModelConfig& c = (*model)->config();
  constexpr int32_t kBlock = 16, kBlocks = kTgPositions / kBlock;
  if (auto st = gpu->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlock, kBlocks}); !st.ok()) {
    return Fail(st);
  }
  // As the engine does after sizing its KV pool: spare memory may hold the f16
  // weight cache (resident copies + fused gate/up/SwiGLU + 224 tiles). The
  // table's pp512 is measured that way; the A/B lines after it start from the
  // plain defaults (no cache) and say so.
  const GpuBackend::DensePrefillOptions plain_dense = gpu->dense_prefill();
  const gpu::DenseTileConfig plain_tiles = gpu::GetDenseTileConfig();
  const size_t cache_bytes = gpu->UseSpareMemory(gpu->AvailableMemoryBytes());
  std::printf("f16 weight cache in spare memory (the engine's default): %s (%.1f GB)\n",
              cache_bytes > 0 ? "on" : "off", static_cast<double>(cache_bytes) / 1e9);
  std::vector<int32_t> table(kBlocks);
  for (int i = 0; i < kBlocks; ++i) table[i] = i;

  size_t weight_bytes = 0;
  for (const auto& t : (*file)->tensors()) {
    if (t.name != "token_embd.weight") weight_bytes += t.nbytes;
  }

  // Copy bandwidth on this device, same run.
  double copy_tbs = 0.0;
  {
    const size_t bytes = size_t{1} << 30;
    void *a = nullptr, *b = nullptr;
    if (gpu::Malloc(&a, bytes).ok && gpu::Malloc(&b, bytes).ok) {
      (void)gpu::Memset(a, 1, bytes, gpu->stream());
      const double ms = bench::MedianMs(gpu->stream(), [&](int) {
        (void)gpu::CopyDeviceToDevice(b, a, bytes, gpu->stream());
      }, 10, 5, 2);
      copy_tbs = 2.0 * bytes / (ms * 1e-3) / 1e12;
    }
    gpu::Free(a);
    gpu::Free(b);
  }

  if (profile) {
    // RF_FUSIONS: the fusion mask to profile (GpuBackend::Fusion bits; default: the defaults).
    if (const char* e = std::getenv("RF_FUSIONS"); e != nullptr) {
      gpu->SetFusions(static_cast<unsigned>(std::atoi(e)));
    }
    // RF_PREFETCH="A/N/S[/C]": the side-stream L2 weight prefetch (MB during attention /
    // after a norm / after SwiGLU / KB a thread asks for, 0 = one block), so ncu can
    // show the prefetch kernels beside the step's (stage profile_prefetch).
    if (const char* e = std::getenv("RF_PREFETCH"); e != nullptr) {
      if (auto st = ApplyWeightPrefetch(gpu, e, gpu::GetL2PrefetchChunk()); !st.ok()) {
        return Fail(absl::InvalidArgumentError(absl::StrCat("RF_PREFETCH: ", st.message())));
      }
    }
    SampleRequest req;
    req.params.temperature = 0.0f;
    int32_t tok = 1;
    double fwd_s = 0.0, sample_s = 0.0;
    constexpr int kWarm = 8, kTimed = 64;
    for (int32_t pos = 0; pos < kWarm + kTimed + 2; ++pos) {
      if (pos == kWarm + kTimed) gpu::ProfilerStart();
      auto a = Clock::now();
      auto logits = (*model)->Forward(Seq({tok}, pos, table, kBlock));
      if (!logits.ok()) return Fail(logits.status());
      const double f = Seconds(a);
      a = Clock::now();
      SampleResult r;
      req.step = pos;
      if (auto st = gpu->Sample(*logits, 1, c.n_vocab, &req, &r); !st.ok()) return Fail(st);
      const double smp = Seconds(a);
      tok = r.token;
      if (pos >= kWarm && pos < kWarm + kTimed) {
        fwd_s += f;
        sample_s += smp;
      }
    }
    gpu::ProfilerStop();
    std::printf("decode step (graphs, mean of %d steps at positions %d..%d): Forward enqueue %.3f ms, "
                "Sample (graph launch + device + sampler + sync) %.3f ms, total %.3f ms = %.1f tok/s\n",
                kTimed, kWarm, kWarm + kTimed - 1, 1e3 * fwd_s / kTimed, 1e3 * sample_s / kTimed,
                1e3 * (fwd_s + sample_s) / kTimed, kTimed / (fwd_s + sample_s));
    return 0;
  }

  if (sample_mode) {
    auto tg = [&](const SamplingParams& sp, double* best) {
      return TimeTg128(**model, gpu, c.n_vocab, sp, table, kBlock, best);
    };
    SamplingParams greedy;
    greedy.temperature = 0.0f;
    SamplingParams topp;
    topp.temperature = 0.7f;
    topp.top_p = 0.9f;
    const gpu::SampleConfig saved = gpu::GetSampleConfig();
    double t_greedy = 0.0, best[3] = {1e30, 1e30, 1e30};  // radix, refined, refined + batched passes
    if (auto st = tg(greedy, &t_greedy); !st.ok()) return Fail(st);
    for (int rep = 0; rep < 2; ++rep) {
      for (int k : {0, 1, 2}) {
        gpu::SetSampleConfig({.refine_wide_rows = k >= 1, .batched_row_passes = k == 2});
        double t = 0.0;
        if (auto st = tg(topp, &t); !st.ok()) return Fail(st);
        best[k] = std::min(best[k], t);
      }
    }
    gpu::SetSampleConfig(saved);
    std::printf("| model | tg128 greedy tok/s | tg128 T 0.7 top-p 0.9: radix selects (old) | refined (new) "
                "| refined, batched row passes |\n|---|---|---|---|---|\n");
    std::printf("| llama3-8b %s | %.1f (%.2f ms/token) | %.1f (%.2f ms) | %.1f (%.2f ms) | %.1f (%.2f ms) |\n",
                argv[1], 128.0 / t_greedy, 1e3 * t_greedy / 128, 128.0 / best[0], 1e3 * best[0] / 128,
                128.0 / best[1], 1e3 * best[1] / 128, 128.0 / best[2], 1e3 * best[2] / 128);
    return 0;
  }

  std::mt19937 rng(1);
  // ---- pp512
  std::vector<int32_t> prompt(512);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % c.n_vocab);
  // One 512-token prefill of `prompt` from position 0, synchronized: seconds.
  auto pp512_forward = [&]() -> absl::StatusOr<double> {
    const auto a = Clock::now();
    auto logits = (*model)->Forward(Seq(prompt, 0, table, kBlock));
    if (!logits.ok()) return logits.status();
    RF_RETURN_IF_ERROR(gpu->Synchronize());
    return Seconds(a);
  };
  double pp_best = 1e30;
  // RF_PROFILE_PP=1: the second pp512 forward runs between ProfilerStart/Stop
  // (run_on_device.sh stage profile_prefill: per-kernel time of a prefill step),
  // and the program ends after the pp512 forwards.
  const bool profile_pp = std::getenv("RF_PROFILE_PP") != nullptr;
  GpuBackend::DensePrefillStats pp_s0, pp_s1;  // the last forward's dense prefill stats
  for (int rep = 0; rep < 4; ++rep) {
    if (profile_pp && rep == 1) gpu::ProfilerStart();
    if (rep == 3) pp_s0 = gpu->dense_prefill_stats();
    const auto t = pp512_forward();
    if (!t.ok()) return Fail(t.status());
    if (profile_pp && rep == 1) gpu::ProfilerStop();
    const double s = *t;
    if (rep > 0) pp_best = std::min(pp_best, s);  // first run is warm-up
    if (rep == 3) pp_s1 = gpu->dense_prefill_stats();
  }
  std::printf("pp512 default, 4th forward: %lld weight dequantizations overlapped, %lld in line\n",
              static_cast<long long>(pp_s1.prefetch_hits - pp_s0.prefetch_hits),
              static_cast<long long>(pp_s1.prefetch_misses - pp_s0.prefetch_misses));
  if (profile_pp) {  // the profiled forward is done: no need to run the rest under the profiler
    std::printf("pp512 %.0f tok/s\n", 512.0 / pp_best);
    return 0;
  }
  if (cache_bytes > 0) {  // the A/B lines below compare against the plain defaults
    gpu->SetDenseResidentF16(false);
    gpu->SetDensePrefill(plain_dense);
    gpu::SetDenseTileConfig(plain_tiles);
    std::printf("pp512 A/B lines below: from the plain defaults (no f16 weight cache)\n");
  }
  // Dense GEMM tiles (gpu::SetDenseTileConfig): 3 pipeline stages (the
  // default), 4, 128 x 224 tiles where they fill the waves better, 128 x 128
  // tiles for grids short of a wave (K split); alternating, best of 5 each.
  {
    const gpu::DenseTileConfig saved = gpu::GetDenseTileConfig();
    struct TileVariant {
      const char* name;
      gpu::DenseTileConfig c;
    };
    const TileVariant variants[] = {{"3 stages (default)", {-1, 3, 256}},
                                    {"4 stages", {-1, 4, 256}},
                                    {"224 tile + 4 stages", {1, 4, 256}},
                                    {"4 stages + short grids 128", {-1, 4, 128}}};
    constexpr int kVariants = 4;
    double best[kVariants] = {1e30, 1e30, 1e30, 1e30};
    for (int rep = 0; rep < 5; ++rep) {
      for (int k = 0; k < kVariants; ++k) {
        gpu::SetDenseTileConfig(variants[k].c);
        const auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        best[k] = std::min(best[k], *t);
      }
    }
    gpu::SetDenseTileConfig(saved);
    std::printf("pp512 by dense GEMM tiles (tok/s, best of 5):");
    for (int k = 0; k < kVariants; ++k) std::printf(" %s %.0f;", variants[k].name, 512.0 / best[k]);
    std::printf("\n");
  }
  // Resident f16 weights (GpuBackend::SetDenseResidentF16): no dequantization
  // after the first forward, the most a GEMM dequantizing in its loader could
  // save; with them, the GEMM tiles again (no side stream competes for SMs).
  // Three forwards without, one to fill the copies, then alternating default
  // tiles / 128 x 224 tiles, best of 3 each. (On the H100 at 08:57 UTC the
  // three forwards without ran ~10% under the default lines of the same run,
  // unexplained: compare "on" with those too.)
  {
    const gpu::DenseTileConfig saved = gpu::GetDenseTileConfig();
    double best[3] = {1e30, 1e30, 1e30};  // off; on; on + 224 tiles
    for (int rep = 0; rep < 3; ++rep) {
      auto t = pp512_forward();
      if (!t.ok()) return Fail(t.status());
      best[0] = std::min(best[0], *t);
    }
    gpu->SetDenseResidentF16(true);
    if (auto t = pp512_forward(); !t.ok()) return Fail(t.status());  // fills the copies
    for (int rep = 0; rep < 3; ++rep) {
      for (int k : {1, 2}) {
        gpu::SetDenseTileConfig(gpu::DenseTileConfig{k == 2 ? 1 : -1, 0, 0});
        auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        best[k] = std::min(best[k], *t);
      }
    }
    gpu::SetDenseTileConfig(saved);
    gpu->SetDenseResidentF16(false);
    std::printf("pp512 with resident f16 weights (tok/s, best of 3): off %.0f; on %.0f; on + 224 tiles %.0f\n",
                512.0 / best[0], 512.0 / best[1], 512.0 / best[2]);
  }
  // Prefill attention on the matrix cores vs the SIMT token-tile kernel
  // (gpu::SetPrefillAttnConfig), alternating, best of two each.
  {
    const gpu::PrefillAttnConfig saved = gpu::GetPrefillAttnConfig();
    double best[2] = {1e30, 1e30};  // [0] matrix cores, [1] SIMT
    for (int rep = 0; rep < 2; ++rep) {
      for (int k : {0, 1}) {
        gpu::SetPrefillAttnConfig(gpu::PrefillAttnConfig{k == 0 ? 1 : -1});
        const auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        best[k] = std::min(best[k], *t);
      }
    }
    gpu::SetPrefillAttnConfig(saved);
    std::printf("pp512 by prefill attention kernel: matrix cores %.0f tok/s, SIMT tiles %.0f tok/s\n",
                512.0 / best[0], 512.0 / best[1]);
  }
  // Dense prefill options (GpuBackend::SetDensePrefill): all off, f16
  // activation reuse + f16-writing producers, overlapped dequantization, the
  // three (the default), and with small Q4_K matrices dense too; alternating,
  // best of 3 each (the first forward with overlap learns the matmul order).
  // The stats line: one forward with the three on.
  {
    const GpuBackend::DensePrefillOptions saved = gpu->dense_prefill();
    struct DenseVariant {
      const char* name;
      GpuBackend::DensePrefillOptions o;
    };
    const DenseVariant variants[] = {{"off", {false, false, false, false}},
                                     {"x16 reuse + f16 producers", {true, true, false, false}},
                                     {"overlapped dequant", {false, false, true, false}},
                                     {"all three (default)", {true, true, true, false}},
                                     {"all + small Q4_K dense", {true, true, true, true}}};
    constexpr int kVariants = 5;
    double best[kVariants] = {1e30, 1e30, 1e30, 1e30, 1e30};
    for (int rep = 0; rep < 3; ++rep) {
      for (int k = 0; k < kVariants; ++k) {
        gpu->SetDensePrefill(variants[k].o);
        const auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        best[k] = std::min(best[k], *t);
      }
    }
    std::printf("pp512 by dense prefill options (tok/s, best of 3):");
    for (int k = 0; k < kVariants; ++k) std::printf(" %s %.0f;", variants[k].name, 512.0 / best[k]);
    std::printf("\n");
    gpu->SetDensePrefill(variants[3].o);
    const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
    if (const auto t = pp512_forward(); !t.ok()) return Fail(t.status());
    const GpuBackend::DensePrefillStats s1 = gpu->dense_prefill_stats();
    std::printf("dense prefill, all on, one forward: %lld conversions reused, %lld written by producers, "
                "%lld weight dequantizations overlapped, %lld in line\n",
                static_cast<long long>(s1.x16_reused - s0.x16_reused),
                static_cast<long long>(s1.f16_produced - s0.f16_produced),
                static_cast<long long>(s1.prefetch_hits - s0.prefetch_hits),
                static_cast<long long>(s1.prefetch_misses - s0.prefetch_misses));
    gpu->SetDensePrefill(saved);
  }
  // Gate / up + SwiGLU in one dense GEMM (DensePrefillOptions::
  // fuse_gate_up_swiglu): off, on, on with the gate / up outputs unwritten;
  // then with resident f16 weights and 128 x 224 tiles allowed, off / on;
  // alternating, best of 3 each (the first forward of each learns its order).
  {
    const GpuBackend::DensePrefillOptions saved = gpu->dense_prefill();
    const gpu::DenseTileConfig saved_tiles = gpu::GetDenseTileConfig();
    auto opts = [&](bool fuse, bool unwritten) {
      GpuBackend::DensePrefillOptions o = saved;
      o.fuse_gate_up_swiglu = fuse;
      o.fused_gate_up_unwritten = unwritten;
      return o;
    };
    const GpuBackend::DensePrefillOptions variants[] = {opts(false, false), opts(true, false), opts(true, true)};
    // The fused GEMM's row tile (DenseTileConfig::swiglu_tile): automatic, 224, 256, 128.
    const int fused_tiles[] = {0, 224, 256, 128};
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    for (int rep = 0; rep < 4; ++rep) {
      for (int k = 0; k < 6; ++k) {
        gpu->SetDensePrefill(variants[k < 3 ? k : 1]);
        gpu::DenseTileConfig tc = saved_tiles;
        tc.swiglu_tile = k < 3 ? 0 : fused_tiles[k - 2];
        gpu::SetDenseTileConfig(tc);
        auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        if (rep > 0) best[k] = std::min(best[k], *t);
      }
    }
    gpu::SetDenseTileConfig(saved_tiles);
    gpu->SetDensePrefill(variants[1]);
    const GpuBackend::DensePrefillStats s0 = gpu->dense_prefill_stats();
    if (auto t = pp512_forward(); !t.ok()) return Fail(t.status());
    const GpuBackend::DensePrefillStats s1 = gpu->dense_prefill_stats();
    std::printf("pp512 gate/up + SwiGLU fusion (tok/s, best of 3): off %.0f; on %.0f; on, gate/up unwritten %.0f; "
                "on, fused tile 224 %.0f / 256 %.0f / 128 %.0f "
                "(one forward on: %lld fused, %lld dequantizations overlapped, %lld in line)\n",
                512.0 / best[0], 512.0 / best[1], 512.0 / best[2], 512.0 / best[3], 512.0 / best[4],
                512.0 / best[5], static_cast<long long>(s1.swiglu_fused - s0.swiglu_fused),
                static_cast<long long>(s1.prefetch_hits - s0.prefetch_hits),
                static_cast<long long>(s1.prefetch_misses - s0.prefetch_misses));
    double res[3] = {1e30, 1e30, 1e30};  // resident: off; on; on + unwritten (224 tiles allowed)
    gpu->SetDenseResidentF16(true);
    gpu::SetDenseTileConfig(gpu::DenseTileConfig{1, 0, 0});
    for (int rep = 0; rep < 4; ++rep) {  // the first fills the copies
      for (int k = 0; k < 3; ++k) {
        gpu->SetDensePrefill(variants[k]);
        auto t = pp512_forward();
        if (!t.ok()) return Fail(t.status());
        if (rep > 0) res[k] = std::min(res[k], *t);
      }
    }
    gpu->SetDenseResidentF16(false);
    gpu::SetDenseTileConfig(saved_tiles);
    gpu->SetDensePrefill(saved);
    std::printf("pp512 gate/up + SwiGLU fusion with resident f16 weights + 224 tiles (tok/s, best of 3): off %.0f; "
                "on %.0f; on, gate/up unwritten %.0f\n",
                512.0 / res[0], 512.0 / res[1], 512.0 / res[2]);
  }
  // ---- tg128, with the decode step as one graph launch (default) and without
  SamplingParams greedy_params;
  greedy_params.temperature = 0.0f;
  auto tg128 = [&](bool graphs, unsigned fusions, double* best) {
    gpu->SetAutoGraphs(graphs);
    gpu->SetFusions(fusions);
    return TimeTg128(**model, gpu, c.n_vocab, greedy_params, table, kBlock, best);
  };
  double tg_nograph = 0.0, tg_best = 0.0;
  // The split-K merge folded into the attention kernel (gpu::SetAttentionMergeFold)
  // off and on, alternating, two repeats each, graphs + default fusions + PDL.
  // RF_DECODE_QUICK=1: only this comparison and the final table (no fusion /
  // PDL / matvec sweeps, no run without graphs).
  const bool quick = std::getenv("RF_DECODE_QUICK") != nullptr;
  {
    // tg128 (graphs, default fusions) under a setting off (name0) and on
    // (name1), alternating, two repeats each; `set` switches it.
    auto off_on = [&](const char* title, const char* name0, const char* name1,
                      const std::function<void(bool)>& set) -> absl::Status {
      std::printf("tg128 with graphs, default fusions, %s (tok/s):", title);
      for (int rep = 0; rep < 2; ++rep) {
        for (bool on : {false, true}) {
          set(on);
          double t = 0.0;
          RF_RETURN_IF_ERROR(tg128(true, GpuBackend::kDefaultFusions, &t));
          std::printf(" %s %.1f;", on ? name1 : name0, 128.0 / t);
        }
      }
      std::printf("\n");
      return absl::OkStatus();
    };
    const bool fold_saved = gpu::GetAttentionMergeFold();
    if (auto st = off_on("attention merge fold off / on", "off", "on", gpu::SetAttentionMergeFold); !st.ok()) {
      return Fail(st);
    }
    gpu::SetAttentionMergeFold(fold_saved);
    if (!quick) {  // measured often, no gain (docs/gpu.md): the full run only
      // (Weight prefetch into L2: measured often, no gain; RF_PREFETCH below.)
      // The RMSNorm + quantize kernel (gpu::SetRmsNormQuantKernel): the
      // register kernel with BlockQuantizeRow (old) / the 8-values-per-lane
      // layout (new), alternating, two repeats each.
      auto set_layout = [](bool on) {
        gpu::SetRmsNormQuantKernel(on ? gpu::NormQuantKernel::kRunLayout : gpu::NormQuantKernel::kRegister);
      };
      if (auto st = off_on("RMSNorm + quantize kernel old / new", "old", "new", set_layout);
          !st.ok()) {
        return Fail(st);
      }
      gpu::SetRmsNormQuantKernel(gpu::NormQuantKernel::kByRule);  // the default
    }
    // Q/K and a V of another type as one launch (kFuseMixedMatVec, 1024),
    // off / on over the default fusions, alternating, three repeats each.
    static_assert(GpuBackend::kFuseMixedMatVec == 1024);
    std::printf("tg128 with graphs, mixed-type Q/K/V group off / on (tok/s):");
    for (int rep = 0; rep < 3; ++rep) {
      for (bool on : {false, true}) {
        double t = 0.0;
        const unsigned f = on ? GpuBackend::kDefaultFusions | 1024u : GpuBackend::kDefaultFusions & ~1024u;
        if (auto st = tg128(true, f, &t); !st.ok()) return Fail(st);
        std::printf(" %s %.1f;", on ? "on" : "off", 128.0 / t);
      }
    }
    std::printf("\n");
    // The batch-1 matvecs that compute their own input (off by default),
    // alternating, two repeats each, over the default fusions: none; the
    // residual add in the O / down epilogue (kFuseResidualMatVec, 256); that
    // and RmsNorm + quantize inside the Q/K/V and gate/up launches
    // (kFuseNormMatVec, 512, on the bulk-copy kernel).
    static_assert(GpuBackend::kFuseResidualMatVec == 256 && GpuBackend::kFuseNormMatVec == 512);
    std::printf("tg128 with graphs, default fusions plus: (tok/s):");
    for (int rep = 0; rep < 2; ++rep) {
      for (unsigned extra : {0u, 256u, 768u}) {
        double t = 0.0;
        if (auto st = tg128(true, GpuBackend::kDefaultFusions | extra, &t); !st.ok()) return Fail(st);
        std::printf(" +%u %.1f;", extra, 128.0 / t);
      }
    }
    std::printf("\n");
    // One L1 / shared-memory split for every kernel (gpu::SetSmemCarveout,
    // percent of the most shared memory; -1 the driver's choice per kernel).
    const int carveout_saved = gpu::GetSmemCarveout();
    std::printf("tg128 with graphs, default fusions, by shared-memory carveout (tok/s):");
    for (int rep = 0; rep < 2; ++rep) {
      for (int carveout : {-1, 7, 14}) {
        gpu::SetSmemCarveout(carveout);
        double t = 0.0;
        if (auto st = tg128(true, GpuBackend::kDefaultFusions, &t); !st.ok()) return Fail(st);
        std::printf(" %d %.1f;", carveout, 128.0 / t);
      }
    }
    std::printf("\n");
    gpu::SetSmemCarveout(carveout_saved);
  }
  // Environment A/B lines: tg128 (graphs) for each value of a list,
  // alternating, RF_AB_REPEATS (default 2) repeats. `apply` sets a value up
  // and returns the fusion mask to run it with (an error: a bad value);
  // `restore` undoes the settings after the line.
  int ab_repeats = 2;
  if (const char* e = std::getenv("RF_AB_REPEATS"); e != nullptr && !absl::SimpleAtoi(e, &ab_repeats)) {
    return Fail(absl::InvalidArgumentError("RF_AB_REPEATS: not a number"));
  }
  auto env_ab = [&](const char* var, const char* title, char sep,
                    const std::function<absl::StatusOr<unsigned>(absl::string_view)>& apply,
                    const std::function<void()>& restore) -> absl::Status {
    const char* e = std::getenv(var);
    if (e == nullptr) return absl::OkStatus();
    std::printf("tg128 with graphs, %s (tok/s, ms a token):", title);
    for (int rep = 0; rep < ab_repeats; ++rep) {
      for (absl::string_view v : absl::StrSplit(e, sep, absl::SkipEmpty())) {
        absl::StatusOr<unsigned> fusions = apply(v);
        if (!fusions.ok()) return absl::InvalidArgumentError(absl::StrCat(var, ": ", fusions.status().message()));
        double t = 0.0;
        RF_RETURN_IF_ERROR(tg128(true, *fusions, &t));
        std::printf(" [%s] %.1f (%.3f);", std::string(v).c_str(), 128.0 / t, 1e3 * t / 128.0);
      }
    }
    std::printf("\n");
    restore();
    return absl::OkStatus();
  };
  // RF_FUSION_BASE="768": fusion bits added to the defaults for every A/B
  // line below (RF_FUSION_ADD adds to that), so a setting can be compared
  // under fusions that are not on by default.
  unsigned dflt = GpuBackend::kDefaultFusions;
  if (const char* e = std::getenv("RF_FUSION_BASE"); e != nullptr) {
    const absl::StatusOr<int> b = ParseInt(e);
    if (!b.ok()) return Fail(absl::InvalidArgumentError("RF_FUSION_BASE: not a number"));
    dflt |= static_cast<unsigned>(*b);
  }
  // RF_PREFETCH_BASE="16/0/8": the weight prefetch (RF_PREFETCH's form) every A/B
  // line below starts from, e.g. to time RF_SKIP_SETS without a window's prefetch.
  if (const char* e = std::getenv("RF_PREFETCH_BASE"); e != nullptr) {
    if (auto st = ApplyWeightPrefetch(gpu, e, gpu::GetL2PrefetchChunk()); !st.ok()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("RF_PREFETCH_BASE: ", st.message())));
    }
  }
  // RF_ATTN_TARGETS="0,8,16": the decode attention's split rule aiming at that
  // many blocks (gpu::DecodeAttnConfig::target_blocks; 0 = one wave of resident
  // blocks, the default; the Llama-3-8B heads at batch 1 run 8 blocks a split,
  // so 8 = one split: no merge kernel).
  // RF_ATTN_KERNELS="0,-1": the decode attention kernel
  // (gpu::DecodeAttnConfig::kernel: 0 auto = the matrix-core one from
  // min_tokens, -1 the SIMT grouped kernel, 1 the matrix-core one always).
  const gpu::DecodeAttnConfig attn_saved = gpu::GetDecodeAttnConfig();
  // Sets one field of the decode attention config (the rest as saved).
  auto attn_field = [&](int gpu::DecodeAttnConfig::*field) {
    return [&, field](absl::string_view t) -> absl::StatusOr<unsigned> {
      gpu::DecodeAttnConfig c = attn_saved;
      RF_ASSIGN_OR_RETURN(c.*field, ParseInt(t));
      gpu::SetDecodeAttnConfig(c);
      return dflt;
    };
  };
  auto attn_restore = [&] { gpu::SetDecodeAttnConfig(attn_saved); };
  absl::Status ab = env_ab("RF_ATTN_TARGETS", "by decode attention target blocks", ',',
                           attn_field(&gpu::DecodeAttnConfig::target_blocks), attn_restore);
  if (ab.ok()) {
    ab = env_ab("RF_ATTN_KERNELS", "by decode attention kernel", ',', attn_field(&gpu::DecodeAttnConfig::kernel),
                attn_restore);
  }
  // RF_ATTN_ONE_SPLIT="0,128": contexts of at most that many keys (the
  // backend's max_ctx: a multiple of 256, or the value itself under 256)
  // unsplit (gpu::DecodeAttnConfig::one_split_keys; 0 = off; default 256:
  // every tg128 step).
  if (ab.ok()) {
    ab = env_ab("RF_ATTN_ONE_SPLIT", "by decode attention one-split keys", ',',
                attn_field(&gpu::DecodeAttnConfig::one_split_keys), attn_restore);
  }
  // RF_ATTN_WARPS="4,8": warps a block of the one-split matrix-core decode
  // attention (gpu::DecodeAttnConfig::one_split_warps; default 8).
  if (ab.ok()) {
    ab = env_ab("RF_ATTN_WARPS", "by one-split attention warps", ',',
                attn_field(&gpu::DecodeAttnConfig::one_split_warps), attn_restore);
  }
  // RF_SEGMENT_OPS="0,48": the step's first segment launched after that many
  // recorded ops (GpuBackend::SetFirstSegmentOps; 0 = one graph a step).
  const int segment_saved = gpu->first_segment_ops();
  if (ab.ok()) {
    ab = env_ab(
        "RF_SEGMENT_OPS", "by first-segment ops", ',',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          RF_ASSIGN_OR_RETURN(const int ops, ParseInt(t));
          gpu->SetFirstSegmentOps(ops);
          return dflt;
        },
        [&] { gpu->SetFirstSegmentOps(segment_saved); });
  }
  // RF_FUSION_ADD="0,32,288": these fusion bits added to the defaults
  // (RF_NORM_QUANT_KERNEL=1 / 2 first switches the RMSNorm + quantize kernel
  // to its 8-values-a-lane / register form for both rules).
  const gpu::NormQuantKernel layout_saved = gpu::GetRmsNormQuantKernel();
  if (ab.ok()) {
    if (const char* l = std::getenv("RF_NORM_QUANT_KERNEL"); l != nullptr) {
      const absl::StatusOr<int> k = ParseInt(l);
      if (!k.ok() || *k < 0 || *k > 2) return Fail(absl::InvalidArgumentError("RF_NORM_QUANT_KERNEL: 0, 1 or 2"));
      gpu::SetRmsNormQuantKernel(static_cast<gpu::NormQuantKernel>(*k));
    }
    ab = env_ab(
        "RF_FUSION_ADD", "default fusions plus", ',',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          RF_ASSIGN_OR_RETURN(const int extra, ParseInt(t));
          return dflt | static_cast<unsigned>(extra);
        },
        [&] { gpu::SetRmsNormQuantKernel(layout_saved); });
  }
  // RF_PREFETCH="16/8/8;0/0/0;16/8/8/0": weight prefetch into L2 on a side stream
  // (GpuBackend::SetWeightPrefetch): MB of the O projection during attention /
  // of the next matrix after a norm / after SwiGLU [/ KB a prefetching thread
  // asks for at once, gpu::SetL2PrefetchChunk; 0 = the one-block kernel]. The
  // defaults are 16 / 8 / 8 / 4.
  const GpuBackend::WeightPrefetch pf_saved = gpu->weight_prefetch();
  const uint32_t pf_chunk_saved = gpu::GetL2PrefetchChunk();
  if (ab.ok()) {
    ab = env_ab(
        "RF_PREFETCH", "by weight prefetch MB attention / after norm / after SwiGLU [/ KB a thread]", ';',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          RF_RETURN_IF_ERROR(ApplyWeightPrefetch(gpu, t, pf_chunk_saved));
          return dflt;
        },
        [&] {
          gpu->SetWeightPrefetch(pf_saved);
          gpu::SetL2PrefetchChunk(pf_chunk_saved);
        });
  }
  // RF_STREAM_SPLIT="0/-1;1/-1;1/100/0/3": the bulk-copy matvec (MatVecConfig::stream)
  // with one L1 / shared-memory split for every kernel (gpu::SetSmemCarveout, -1 the
  // driver's choice), optionally these fusion bits taken off the defaults, the ring's
  // slots and warps a block (MatVecConfig::stream_slots / stream_warps, 0 = default).
  // The bulk-copy kernel wants a large split and the portable matvecs their L1; with
  // every matvec on bulk copies one large split serves the whole step and no boundary
  // changes it (H100 2026-11-27: still 11% slower than the portable matvecs).
  const gpu::MatVecConfig mv_saved = gpu::GetMatVecConfig();
  const int carve_saved = gpu::GetSmemCarveout();
  if (ab.ok()) {
    ab = env_ab(
        "RF_STREAM_SPLIT", "by bulk-copy matvec / carveout / fusions off", ';',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          RF_ASSIGN_OR_RETURN(std::vector<int> v, SlashInts(t, 2, 5, "S/C[/OFF[/SLOTS[/WARPS]]]"));
          v.resize(5, 0);  // absent: no fusions off, the default slots and warps
          gpu::MatVecConfig mc = mv_saved;
          mc.stream = v[0];
          mc.stream_slots = v[3];
          mc.stream_warps = v[4];
          gpu::SetMatVecConfig(mc);
          gpu::SetSmemCarveout(v[1]);
          return dflt & ~static_cast<unsigned>(v[2]);
        },
        [&] {
          gpu::SetMatVecConfig(mv_saved);
          gpu::SetSmemCarveout(carve_saved);
        });
  }
  // RF_PREFETCH_PRIORITY="0,1": the side-stream L2 prefetch kernel at the
  // device's highest stream priority (gpu::SetL2PrefetchHighPriority).
  if (ab.ok()) {
    const bool saved = gpu::GetL2PrefetchHighPriority();
    ab = env_ab(
        "RF_PREFETCH_PRIORITY", "by L2 prefetch kernel at high priority", ',',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          RF_ASSIGN_OR_RETURN(const int on, ParseInt(t));
          gpu::SetL2PrefetchHighPriority(on != 0);
          return dflt;
        },
        [&, saved] { gpu::SetL2PrefetchHighPriority(saved); });
  }
  // A/B lines over one integer field of the batch-1 matvec settings.
  auto matvec_int_ab = [&](const char* var, const char* title, int gpu::MatVecConfig::*field) {
    return env_ab(
        var, title, ',',
        [&, field](absl::string_view t) -> absl::StatusOr<unsigned> {
          gpu::MatVecConfig mc = mv_saved;
          RF_ASSIGN_OR_RETURN(mc.*field, ParseInt(t));
          gpu::SetMatVecConfig(mc);
          return dflt;
        },
        [&] { gpu::SetMatVecConfig(mv_saved); });
  };
  // RF_MATVEC_PREFETCH="-1,0,1024": the batch-1 matvecs' L2 prefetch of each
  // block's rows before the PDL wait (MatVecConfig::prefetch_bytes: bytes a
  // row, -1 auto = 1024 for Q8_0 only, 0 none).
  if (ab.ok()) {
    ab = matvec_int_ab("RF_MATVEC_PREFETCH", "by matvec prefetch bytes a row before the PDL wait",
                       &gpu::MatVecConfig::prefetch_bytes);
  }
  // RF_Q6K_STAGED="1,0": Q6_K pairs at 32 threads a row with each warp's
  // weights staged through shared memory (MatVecConfig::q6k_staged) or read
  // in place.
  if (ab.ok()) {
    ab = matvec_int_ab("RF_Q6K_STAGED", "by Q6_K pairs staged in shared memory", &gpu::MatVecConfig::q6k_staged);
  }
  // RF_SHAPES="-;1=32x1;4=64x2": batch-1 matvec shapes by weight class
  // (ApplyShapes, gpu::MatVecConfig::shape: 0 Q4_K attention output, 1 Q4_K
  // Q/K/V, 2 Q4_K gate/up, 3 Q4_K down, 4 Q6_K down, 5 Q6_K output head, 6-10
  // Q8_0 attention output, Q/K/V, gate/up, down, output head), in the step.
  if (ab.ok()) {
    ab = env_ab(
        "RF_SHAPES", "by batch-1 matvec shape per class", ';',
        [&](absl::string_view t) -> absl::StatusOr<unsigned> {
          gpu::MatVecConfig mc = mv_saved;
          RF_RETURN_IF_ERROR(ApplyShapes(t, &mc));
          gpu::SetMatVecConfig(mc);
          return dflt;
        },
        [&] { gpu::SetMatVecConfig(mv_saved); });
  }
  // RF_SKIP_SETS="2,3;5;20": the ops of each set of signature tags not
  // launched (GpuBackend::SetSkippedOpsForTiming; the tokens are garbage, the
  // time is what the step costs without them), "-" = nothing left out: what
  // each kind of kernel costs inside the step's graph, where ncu can only
  // time kernels one by one.
  if (ab.ok()) {
    ab = env_ab(
        "RF_SKIP_SETS", "ops left out by tag (timing only)", ';',
        [&](absl::string_view set) -> absl::StatusOr<unsigned> {
          std::vector<int> tags;
          if (set != "-") {
            for (absl::string_view t : absl::StrSplit(set, ',', absl::SkipEmpty())) {
              RF_ASSIGN_OR_RETURN(const int tag, ParseInt(t));
              tags.push_back(tag);
            }
          }
          gpu->SetSkippedOpsForTiming(std::move(tags));
          return dflt;
        },
        [&] { gpu->SetSkippedOpsForTiming({}); });
  }
  if (!ab.ok()) return Fail(ab);
  if (!quick) {
  if (auto st = tg128(false, GpuBackend::kDefaultFusions, &tg_nograph); !st.ok()) return Fail(st);
  // What each fusion (GpuBackend::Fusion bits) gains, alone and as the one
  // left out of all: 1 norm+quantize (Q8_0 rule), 2 SwiGLU+quantize,
  // 4 Add+RmsNorm, 8 RoPE+KV store, 16 attention merge+quantize,
  // 32 norm+quantize (Q8_K rule).
  std::printf("tg128 with graphs by fusion mask (tok/s):");
  const unsigned all = GpuBackend::kAllFusions;
  for (unsigned mask : {0u, all, 1u, 2u, 4u, 8u, 16u, 32u, all ^ 1u, all ^ 2u, all ^ 4u, all ^ 8u,
                        all ^ 16u, all ^ 32u}) {
    double t = 0.0;
    if (auto st = tg128(true, mask, &t); !st.ok()) return Fail(st);
    std::printf(" %u: %.1f;", mask, 128.0 / t);
  }
  std::printf("\n");
  // PDL (gpu::SetPdl) off and on, alternating, best of each, default fusions;
  // then the batch-1 matvec rows per thread and L2 prefetch per row under PDL.
  {
    const bool pdl_saved = gpu::GetPdl();
    const gpu::MatVecConfig mv_saved = gpu::GetMatVecConfig();
    double off = 1e30, on = 1e30;
    for (int rep = 0; rep < 2; ++rep) {
      for (bool pdl : {false, true}) {
        gpu::SetPdl(pdl);
        double t = 0.0;
        if (auto st = tg128(true, GpuBackend::kDefaultFusions, &t); !st.ok()) return Fail(st);
        (pdl ? on : off) = std::min(pdl ? on : off, t);
      }
    }
    std::printf("tg128 with graphs, default fusions: PDL off %.1f tok/s, PDL on %.1f tok/s (%+.1f%%)\n",
                128.0 / off, 128.0 / on, 100.0 * (off / on - 1.0));
    // Threads per row -1 = the v5 matvec shapes (before the v6 sweep), 0 = auto;
    // rows per thread 0 = auto; prefetch bytes per row under PDL (-1 = auto).
    std::printf("tg128 by matvec threads per row / rows per thread / prefetch bytes per row / PDL (tok/s):");
    struct Mv { int tpr, rpt, pf; bool pdl; };
    for (int rep = 0; rep < 2; ++rep) {
      for (Mv v : {Mv{-1, 0, 0, false}, Mv{0, 0, 0, false}, Mv{-1, 0, 0, true}, Mv{0, 0, 0, true},
                   Mv{0, 0, 1024, true}, Mv{0, 0, -1, true}, Mv{0, 1, 0, true},
                   Mv{-2, 0, -1, true}}) {  // -2: the v6 shapes (gpu_api.h)
        gpu::MatVecConfig mc = mv_saved;
        mc.threads_per_row = v.tpr;
        mc.rows_per_thread = v.rpt;
        mc.prefetch_bytes = v.pf;
        gpu::SetMatVecConfig(mc);
        gpu::SetPdl(v.pdl);
        double t = 0.0;
        if (auto st = tg128(true, GpuBackend::kDefaultFusions, &t); !st.ok()) return Fail(st);
        std::printf(" %d/%d/%d/%s: %.1f;", v.tpr, v.rpt, v.pf, v.pdl ? "on" : "off", 128.0 / t);
      }
    }
    std::printf("\n");
    gpu::SetMatVecConfig(mv_saved);
    gpu::SetPdl(pdl_saved);
  }
  }  // !quick
  if (auto st = tg128(true, GpuBackend::kDefaultFusions, &tg_best); !st.ok()) return Fail(st);
  if (quick) tg_nograph = 1e30;  // not measured
  if (tg_nograph > 0.0) std::printf("tg128 without graphs: %.1f tok/s; ", 128.0 / tg_nograph);
  std::printf("tg128 with graphs (default fusions %u, PDL %s): %.1f tok/s (%d graphs captured, %d replays)\n",
              GpuBackend::kDefaultFusions, gpu::GetPdl() ? "on" : "off", 128.0 / tg_best,
              gpu->graphs_captured(), gpu->graphs_replayed());
  const double tg = 128.0 / tg_best;
  // Mean context over tg128 is ~64 positions; K and V in f16.
  const double kv_bytes = 2.0 * c.n_layers * 64.0 * c.n_kv_heads * c.head_dim * 2.0;
  const double bytes_per_token = weight_bytes + kv_bytes;
  const double limit_tok_s = copy_tbs * 1e12 / bytes_per_token;
  std::printf("| model | weights read/token | pp512 tok/s | tg128 tok/s | copy BW TB/s | tg limit tok/s | %% of limit |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::printf("| llama3-8b %s | %.2f GB | %.0f | %.1f | %.2f | %.1f | %.0f%% |\n", argv[1],
              bytes_per_token / 1e9, 512.0 / pp_best, tg, copy_tbs, limit_tok_s, 100.0 * tg / limit_tok_s);
  return 0;
}
