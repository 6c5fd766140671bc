// Kernel-level GPU benchmarks, printed as markdown table rows:
//  * matrix x vector at m=4096, n=1, k=14336 per weight type: weight bytes / time
//    (TB/s), the figure ggml's anchors in issue 6 use; weights rotate over
//    enough copies (> 4x L2) that every launch reads device memory;
//  * the f32 tiled and matrix-core paths at n=512 (TFLOP/s), and the matrix-core
//    GEMM table (`bench_gpu_kernels gemm` prints only that) at n = 16..2048;
//  * device-to-device copy bandwidth (bytes read + written);
//  * the sampler at a 128k vocabulary, GPU vs the CPU reference sampler.
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu/bench_timer.h"
#include "engine/backend/gpu/gpu_backend.h"
#include "engine/gguf/quant.h"
#include "engine/sampling/sampler.h"
#include "kernels/gpu_api.h"

using namespace rocmforge;

namespace {

#define CHECK_GPU(x)                                                   \
  do {                                                                 \
    gpu::GpuStatus st_ = (x);                                          \
    if (!st_.ok) {                                                     \
      std::fprintf(stderr, "%s: %s\n", #x, st_.message.c_str());       \
      std::exit(1);                                                    \
    }                                                                  \
  } while (0)

// `copies` device copies of a rows x cols weight filled from a pool of
// quantized random rows.
std::vector<void*> MakeWeights(GgmlType type, int64_t rows, int64_t cols, int copies,
                               gpu::Stream s) {
  const size_t row_bytes = RowBytes(type, cols);
  constexpr int kPool = 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<uint8_t> pool(row_bytes * kPool), host(row_bytes * rows);
  std::vector<float> v(cols);
  for (int r = 0; r < kPool; ++r) {
    for (float& x : v) x = nd(rng);
    quant::QuantizeRow(type, v.data(), pool.data() + r * row_bytes, cols);
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(pool.data() + (r * 7 % kPool) * row_bytes, row_bytes, host.data() + r * row_bytes);
  }
  std::vector<void*> out;
  for (int c = 0; c < copies; ++c) {
    void* p = nullptr;
    CHECK_GPU(gpu::Malloc(&p, host.size()));
    CHECK_GPU(gpu::CopyToDevice(p, host.data(), host.size(), s));
    out.push_back(p);
  }
  CHECK_GPU(gpu::StreamSync(s));
  return out;
}

// ---- matrix-core GEMM (n > kSmallBatchMax): TFLOP/s and weight bytes / time at
// the Llama-3-8B projection shapes for the batched-decode (n = 16..64) and
// prefill (n = 128..2048) regimes. Weights rotate over copies worth > 256 MiB
// (> 4x L2) so every launch reads them from device memory; activations are
// random normal values.
void RunGemmBench(gpu::Stream s) {
  struct Shape {
    int64_t m, k;
  };
  const std::vector<int> ns = {16, 32, 64, 128, 512, 2048};
  const int64_t kmax = 14336;
  float* x = nullptr;
  float* y = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t{2048} * kmax * sizeof(float)));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), size_t{2048} * kmax * sizeof(float)));
  {
    std::vector<float> hx(size_t{2048} * kmax);
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
  }
  // n <= 64: the automatic choice (the narrow path where it applies) and, in the
  // same run, the older 128 x 32/64 tiles (GemmConfig::narrow = -1).
  std::printf("\n| GEMM type | m x k | n | path | us | TFLOP/s | weight TB/s |\n|---|---|---|---|---|---|---|\n");
  const gpu::GemmConfig saved = gpu::GetGemmConfig();
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16}) {
    for (Shape sh : {Shape{4096, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      for (int n : ns) {
        for (int narrow : {0, -1}) {
          if (narrow < 0 && n > 64) continue;
          gpu::GemmConfig cfg;
          cfg.narrow = narrow;
          gpu::SetGemmConfig(cfg);
          const char* path = narrow < 0 ? "old" : gpu::MatMulMmaNarrowTakes(type, w[0], sh.k, n) ? "narrow" : "auto";
          const double flop = 2.0 * sh.m * sh.k * n;
          const int iters = flop > 1e11 ? 5 : 20;
          const double ms = bench::MedianMs(s, [&](int i) {
            gpu::LaunchMatMulMma(type, w[i % copies], sh.m, sh.k, x, y, n, s);
          }, iters, 5, 3);
          CHECK_GPU(gpu::LastLaunchError());
          std::printf("| %s | %lldx%lld | %d | %s | %.1f | %.1f | %.2f |\n", std::string(TypeName(type)).c_str(),
                      static_cast<long long>(sh.m), static_cast<long long>(sh.k), n, path, ms * 1e3,
                      flop / (ms * 1e-3) / 1e12, bytes / (ms * 1e-3) / 1e12);
          std::fflush(stdout);
        }
      }
      for (void* p : w) gpu::Free(p);
    }
  }
  gpu::SetGemmConfig(saved);
  // Tile / split sweep (gpu::GemmConfig) for Q4_K and Q8_0.
  // n <= 64: the narrow path (narrow 1) per token tile and split target.
  std::printf("\n| GEMM sweep type | m x k | n | token tile | blocks/SM target | narrow | us | TFLOP/s | weight TB/s |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    for (Shape sh : {Shape{4096, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      for (int n : ns) {
        std::vector<gpu::GemmConfig> cfgs;
        if (n <= 64) {
          for (int bps : {1, 2, 3, 4, 8}) cfgs.push_back({0, bps, 1});
          for (int tile : {16, 32, 64}) {
            if (tile < n || tile == 64) cfgs.push_back({tile, 0, 1});
          }
        } else {
          for (int tile : {64, 128, 129}) cfgs.push_back({tile, 0});
          cfgs.push_back({129, 4});
        }
        for (const gpu::GemmConfig& c : cfgs) {
          gpu::SetGemmConfig(c);
          const double flop = 2.0 * sh.m * sh.k * n;
          const double ms = bench::MedianMs(s, [&](int i) {
            gpu::LaunchMatMulMma(type, w[i % copies], sh.m, sh.k, x, y, n, s);
          }, flop > 1e11 ? 5 : 20, 5, 3);
          CHECK_GPU(gpu::LastLaunchError());
          std::printf("| %s | %lldx%lld | %d | %d | %d | %d | %.1f | %.1f | %.2f |\n",
                      std::string(TypeName(type)).c_str(), static_cast<long long>(sh.m),
                      static_cast<long long>(sh.k), n, c.token_tile, c.blocks_per_sm, c.narrow, ms * 1e3,
                      flop / (ms * 1e-3) / 1e12, bytes / (ms * 1e-3) / 1e12);
        }
        std::fflush(stdout);
      }
      for (void* p : w) gpu::Free(p);
    }
  }
  gpu::SetGemmConfig(saved);
  gpu::Free(x);
  gpu::Free(y);
}

}  // namespace

int main(int argc, char** argv) {
  auto be = GpuBackend::Create(0);
  if (!be.ok()) {
    std::fprintf(stderr, "no GPU: %s\n", std::string(be.status().message()).c_str());
    return 1;
  }
  gpu::Stream s = (*be)->stream();
  std::printf("device: %s (%s)\n\n", (*be)->device_name().c_str(), gpu::RuntimeName());
  // `bench_gpu_kernels gemm`: the GEMM table alone.
  if (argc > 1 && std::string(argv[1]) == "gemm") {
    RunGemmBench(s);
    return 0;
  }
  // `bench_gpu_kernels gemm1 TYPE M K N`: 20 launches of one GEMM (for a profiler).
  if (argc == 6 && std::string(argv[1]) == "gemm1") {
    GgmlType type = GgmlType::Q4_K;
    if (!ParseTypeName(argv[2], &type)) return 2;
    const int64_t m = std::atoll(argv[3]), k = std::atoll(argv[4]);
    const int n = std::atoi(argv[5]);
    std::vector<void*> w = MakeWeights(type, m, k, 1, s);
    float *x = nullptr, *y = nullptr;
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t(n) * k * sizeof(float)));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), size_t(n) * m * sizeof(float)));
    std::vector<float> hx(size_t(n) * k);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
    for (int i = 0; i < 20; ++i) gpu::LaunchMatMulMma(type, w[0], m, k, x, y, n, s);
    CHECK_GPU(gpu::StreamSync(s));
    std::printf("gemm1 %s %lldx%lld n=%d done\n", argv[2], static_cast<long long>(m),
                static_cast<long long>(k), n);
    return 0;
  }

  // ---- copy bandwidth
  const size_t copy_bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_GPU(gpu::Malloc(&src, copy_bytes));
  CHECK_GPU(gpu::Malloc(&dst, copy_bytes));
  CHECK_GPU(gpu::Memset(src, 1, copy_bytes, s));
  const double copy_ms =
      bench::MedianMs(s, [&](int) { (void)gpu::CopyDeviceToDevice(dst, src, copy_bytes, s); }, 10, 5, 2);
  const double copy_tbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e12;
  std::printf("| device copy (read+write) | %.0f MiB | %.3f ms | %.2f TB/s |\n\n", copy_bytes / 1048576.0,
              copy_ms, copy_tbs);
  gpu::Free(src);
  gpu::Free(dst);

  // ---- matvec m=4096 n=1 k=14336
  const int64_t m = 4096, k = 14336;
  std::printf("| type | weight MiB | us / matvec (incl. activation quantization) | TB/s (weight bytes / time) | TB/s, matvec kernel alone | ggml anchor TB/s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  struct T {
    GgmlType type;
    double anchor;
  };
  float* x = nullptr;
  float* y = nullptr;
  void* scratch = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), 512 * k * sizeof(float)));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), 512 * m * sizeof(float)));
  CHECK_GPU(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(k, gpu::kSmallBatchMax)));
  {
    std::vector<float> hx(512 * k);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
  }
  for (T t : {T{GgmlType::F32, 3.05}, T{GgmlType::F16, 2.89}, T{GgmlType::Q8_0, 2.23},
              T{GgmlType::Q4_0, 2.14}, T{GgmlType::Q4_K, 1.99}, T{GgmlType::Q5_K, 1.96},
              T{GgmlType::Q6_K, 1.61}}) {
    const size_t bytes = RowBytes(t.type, k) * m;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<void*> w = MakeWeights(t.type, m, k, copies, s);
    const double ms = bench::MedianMs(s, [&](int i) {
      gpu::LaunchMatMulSmallBatch(t.type, w[i % copies], m, k, x, y, 1, scratch, s);
    }, 100, 7, 20);
    CHECK_GPU(gpu::LastLaunchError());
    // The matvec alone, activations quantized beforehand (the float types have no such step).
    double ms_only = ms;
    if (gpu::ActivationRule(t.type) != 0) {
      gpu::LaunchQuantizeActivation(t.type, x, k, scratch, s);
      ms_only = bench::MedianMs(s, [&](int i) {
        gpu::LaunchMatMulSmallBatchQuantized(t.type, w[i % copies], m, k, scratch, y, 1, s);
      }, 100, 7, 20);
    }
    std::printf("| %s | %.1f | %.1f | %.2f | %.2f | %.2f |\n", std::string(TypeName(t.type)).c_str(),
                bytes / 1048576.0, ms * 1e3, bytes / (ms * 1e-3) / 1e12,
                bytes / (ms_only * 1e-3) / 1e12, t.anchor);
    std::fflush(stdout);
    if (t.type == GgmlType::Q4_K || t.type == GgmlType::F16 || t.type == GgmlType::Q8_0) {
      const double tms = bench::MedianMs(s, [&](int i) {
        gpu::LaunchMatMulTiled(t.type, w[i % copies], m, k, x, y, 512, s);
      }, 5, 5, 2);
      const double mms = bench::MedianMs(s, [&](int i) {
        gpu::LaunchMatMulMma(t.type, w[i % copies], m, k, x, y, 512, s);
      }, 5, 5, 2);
      std::printf("|   n=512 %s: f32 tiled %.1f TFLOP/s, matrix cores %.1f TFLOP/s | | | | | |\n",
                  std::string(TypeName(t.type)).c_str(), 2.0 * m * k * 512 / (tms * 1e-3) / 1e12,
                  2.0 * m * k * 512 / (mms * 1e-3) / 1e12);
    }
    for (void* p : w) gpu::Free(p);
  }
  // ---- batch-1 matvec kernel shapes (gpu::MatVecConfig) at the decode shapes of
  // Llama-3-8B: kernel alone, activations quantized beforehand.
  std::printf("\n| type | m x k | config (threads/row, pairs) | us | TB/s |\n|---|---|---|---|---|\n");
  const gpu::MatVecConfig saved = gpu::GetMatVecConfig();
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q8_0, GgmlType::Q4_0}) {
    struct Shape {
      int64_t m, k;
    };
    for (Shape sh : {Shape{4096, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      gpu::LaunchQuantizeActivation(type, x, sh.k, scratch, s);
      const bool k4 = type == GgmlType::Q4_K || type == GgmlType::Q5_K;
      for (int tpr : {0, 32, 64, 128}) {  // 0: auto
        for (int pairs = 0; pairs <= (k4 ? 1 : 0); ++pairs) {
          gpu::SetMatVecConfig({tpr, pairs == 1});
          const double ms = bench::MedianMs(s, [&](int i) {
            gpu::LaunchMatMulSmallBatchQuantized(type, w[i % copies], sh.m, sh.k, scratch, y, 1, s);
          }, 100, 7, 20);
          CHECK_GPU(gpu::LastLaunchError());
          std::printf("| %s | %lldx%lld | %d, %d | %.2f | %.2f |\n", std::string(TypeName(type)).c_str(),
                      static_cast<long long>(sh.m), static_cast<long long>(sh.k), tpr, pairs, ms * 1e3,
                      bytes / (ms * 1e-3) / 1e12);
        }
      }
      std::fflush(stdout);
      for (void* p : w) gpu::Free(p);
    }
  }
  gpu::SetMatVecConfig(saved);
  gpu::Free(x);
  gpu::Free(y);
  gpu::Free(scratch);

  // ---- sampler at 128k vocabulary
  const int vocab = 128256;
  std::vector<float> logits(vocab);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (float& v : logits) v = nd(rng);
  float* dl = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&dl), 32 * size_t(vocab) * sizeof(float)));
  for (int r = 0; r < 32; ++r) {
    CHECK_GPU(gpu::CopyToDevice(dl + size_t(r) * vocab, logits.data(), vocab * sizeof(float), s));
  }
  std::printf("\n| sampler, vocab 128256 | CPU reference ms/row | GPU ms/row (1 row) | GPU ms/row (32 rows) | speed-up (1 row) |\n|---|---|---|---|---|\n");
  struct P {
    const char* name;
    SamplingParams p;
  };
  SamplingParams temp;
  temp.temperature = 0.8f;
  SamplingParams topp = temp;
  topp.top_p = 0.9f;
  SamplingParams topk = temp;
  topk.top_k = 40;
  topk.top_p = 0.95f;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  for (P p : {P{"greedy", greedy}, P{"temperature", temp}, P{"top-p 0.9", topp}, P{"top-k 40 + top-p", topk}}) {
    auto t0 = std::chrono::steady_clock::now();
    int reps = 0;
    for (; reps < 20; ++reps) (void)SampleToken(logits.data(), vocab, p.p, reps, nullptr, 0);
    const double cpu_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::vector<SampleRequest> req(32);
    for (auto& r : req) r.params = p.p;
    std::vector<SampleResult> res(32);
    auto time_gpu = [&](int rows) {
      for (int i = 0; i < 3; ++i) (void)(*be)->Sample(dl, rows, vocab, req.data(), res.data());
      auto a = std::chrono::steady_clock::now();
      for (int i = 0; i < 20; ++i) (void)(*be)->Sample(dl, rows, vocab, req.data(), res.data());
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count() / 20 / rows;
    };
    const double g1 = time_gpu(1), g32 = time_gpu(32);
    std::printf("| %s | %.3f | %.3f | %.4f | %.1fx |\n", p.name, cpu_ms, g1, g32, cpu_ms / g1);
  }
  gpu::Free(dl);
  std::printf("\n(GPU sampler times include parameter upload and result download, host clock.)\n");
  return 0;
}
