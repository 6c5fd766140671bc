// End-to-end GPU decode and prefill of a Llama-3-8B-shaped model with random
// weights, the way `rocmforge make-model` writes it (gguf::WriteRandomModel,
// generated on the machine that runs the benchmark).
//
//   bench_gpu_decode FILE_TYPE DIR      e.g. bench_gpu_decode Q4_K_M /tmp
//   bench_gpu_decode FILE_TYPE DIR profile
//       decode steps only: host-time split of a step (Forward's enqueue vs
//       Sample = graph launch + device work + sampler + sync), then two steps
//       between ProfilerStart/Stop for `ncu --profile-from-start off`.
//
// Prints pp512 (prompt tok/s, one 512-token step), tg128 (128 decode steps at
// batch 1 from an empty context, greedy GPU sampling included) and the
// fraction of the memory-bandwidth limit reached at batch 1: bytes read per
// token (every weight but the embedding table, which is read one row at a time,
// plus the mean KV cache read) over the measured device copy bandwidth.
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  const bool profile = argc == 4 && std::string(argv[3]) == "profile";
  if (argc != 3 && !profile) {
    std::fprintf(stderr, "usage: bench_gpu_decode FILE_TYPE DIR [profile]\n");
    return 2;
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
  // RF_MATVEC="THREADS_PER_ROW,PAIRS" picks the batch-1 matvec shape (gpu::MatVecConfig).
  if (const char* mv = std::getenv("RF_MATVEC"); mv != nullptr) {
    gpu::MatVecConfig mc;
    int pairs = 0;
    if (std::sscanf(mv, "%d,%d", &mc.threads_per_row, &pairs) >= 1) {
      mc.pairs = pairs != 0;
      gpu::SetMatVecConfig(mc);
    }
    mc = gpu::GetMatVecConfig();
    std::printf("matvec config: %d threads per row (0 = auto), pairs %d\n", mc.threads_per_row,
                mc.pairs ? 1 : 0);
  }
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return Fail(file.status());
  auto be = GpuBackend::Create(0);
  if (!be.ok()) return Fail(be.status());
  GpuBackend* gpu = be->get();
  auto t0 = Clock::now();
  auto model = Model::Load(**file, gpu, 512);
  if (!model.ok()) return Fail(model.status());
  std::printf("loaded on %s in %.1f s\n", gpu->device_name().c_str(), Seconds(t0));
  const ModelConfig& c = (*model)->config();
  constexpr int32_t kBlock = 16, kBlocks = 64;  // 1024 positions
  if (auto st = gpu->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlock, kBlocks}); !st.ok()) {
    return Fail(st);
  }
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

  std::mt19937 rng(1);
  // ---- pp512
  std::vector<int32_t> prompt(512);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % c.n_vocab);
  double pp_best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    auto a = Clock::now();
    auto logits = (*model)->Forward(Seq(prompt, 0, table, kBlock));
    if (!logits.ok()) return Fail(logits.status());
    if (auto st = gpu->Synchronize(); !st.ok()) return Fail(st);
    const double s = Seconds(a);
    if (rep > 0) pp_best = std::min(pp_best, s);  // first run is warm-up
  }
  // ---- tg128, with the decode step as one graph launch (default) and without
  SampleRequest req;
  req.params.temperature = 0.0f;
  auto tg128 = [&](bool graphs, unsigned fusions, double* best) -> absl::Status {
    gpu->SetAutoGraphs(graphs);
    gpu->SetFusions(fusions);
    *best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      int32_t tok = 1;
      auto a = Clock::now();
      for (int32_t pos = 0; pos < 128; ++pos) {
        auto logits = (*model)->Forward(Seq({tok}, pos, table, kBlock));
        if (!logits.ok()) return logits.status();
        SampleResult r;
        req.step = pos;
        RF_RETURN_IF_ERROR(gpu->Sample(*logits, 1, c.n_vocab, &req, &r));
        tok = r.token;
      }
      const double s = Seconds(a);
      if (rep > 0) *best = std::min(*best, s);
    }
    return absl::OkStatus();
  };
  double tg_nograph = 0.0, tg_best = 0.0;
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
  if (auto st = tg128(true, GpuBackend::kDefaultFusions, &tg_best); !st.ok()) return Fail(st);
  std::printf("tg128 without graphs: %.1f tok/s; with graphs (default fusions %u): %.1f tok/s "
              "(%d graphs captured, %d replays)\n",
              128.0 / tg_nograph, GpuBackend::kDefaultFusions, 128.0 / tg_best, gpu->graphs_captured(),
              gpu->graphs_replayed());
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
