// Kernel-level GPU benchmarks, printed as markdown table rows:
//  * matrix x vector at m=4096, n=1, k=14336 per weight type: weight bytes / time
//    (TB/s), the figure ggml's anchors in issue 6 use; weights rotate over
//    enough copies (> 4x L2) that every launch reads device memory;
//  * the f32 tiled and matrix-core paths at n=512 (TFLOP/s), and the matrix-core
//    GEMM table (`bench_gpu_kernels gemm` prints only that) at n = 16..2048;
//  * `gemm_group`: a layer's Q/K/V and gate/up GEMMs as separate launches vs one
//    grouped launch; `crossover`: the dense path vs the in-loop GEMM per shape;
//  * device-to-device copy bandwidth (bytes read + written);
//  * the sampler at a 128k vocabulary, GPU vs the CPU reference sampler.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu/bench_timer.h"
#include "engine/common/fp16.h"
#include "engine/backend/gpu/gpu_backend.h"
#include "engine/gguf/quant.h"
#include "engine/sampling/sampler.h"
#include "kernels/gpu_api.h"
#include "kernels/matmul_dense_wgmma.h"
#include "kernels/mma_rate_probe.h"
#include "kernels/sync_probe.h"

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
void RunGemmBench(gpu::Stream s, bool sweep) {
  struct Shape {
    int64_t m, k;
  };
  const std::vector<int> ns = {16, 32, 64, 96, 128, 512, 2048};
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
  // n <= 128: the automatic choice and, in the same run, the v5 narrow kernel
  // (GemmConfig::narrow = 1) with its own and the next smaller token tile, the
  // v4 narrow kernel (narrow = 2, n <= 64) and the older 128 x 32/64/128 tiles
  // (narrow = -1).
  std::printf("\n| GEMM type | m x k | n | path | us | TFLOP/s | weight TB/s |\n|---|---|---|---|---|---|---|\n");
  const gpu::GemmConfig saved = gpu::GetGemmConfig();
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16}) {
    for (Shape sh : {Shape{4096, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      for (int n : ns) {
        // Variants: auto, v4, v5 with the next smaller token tile (several
        // tiles per launch), older kernel.
        struct Variant {
          gpu::GemmConfig cfg;
          const char* name;
          int min_n, max_n;
        };
        const Variant variants[] = {{{0, 0, 0}, nullptr, 0, 1 << 30}, {{0, 0, 1}, "v5", 33, 128},
                                    {{0, 0, 2}, "v4", 0, 64},         {{16, 0, 1}, "v5 t16", 17, 32},
                                    {{32, 0, 1}, "v5 t32", 33, 64},   {{64, 0, 1}, "v5 t64", 65, 128},
                                    {{0, 0, -1}, "old", 0, 128}};
        for (const Variant& v : variants) {
          if (n < v.min_n || n > v.max_n) continue;
          gpu::SetGemmConfig(v.cfg);
          const bool takes = gpu::MatMulMmaNarrowTakes(type, w[0], sh.k, n);
          if (v.cfg.narrow > 0 && !takes) continue;
          const char* path = v.name != nullptr ? v.name : takes ? "auto (narrow)" : "auto";
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
  if (!sweep) {
    gpu::Free(x);
    gpu::Free(y);
    return;
  }
  // Tile / split sweep (gpu::GemmConfig) for Q4_K and Q8_0 (`gemm sweep`).
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
        if (n <= 128) {
          for (int bps : {1, 2, 3, 4, 8}) cfgs.push_back({0, bps, 1});
          for (int tile : {16, 32, 64, 128}) {
            if (tile < n || tile == 128) cfgs.push_back({tile, 0, 1});
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

// Buffers of the dense-path benches: random activations x (n_max rows of up to
// kmax values), outputs y, and the dense path's f16 scratch (`d`).
struct DenseBenchBuffers {
  static constexpr int64_t kmax = 14336;
  float *x = nullptr, *y = nullptr;
  void *x16 = nullptr, *w16 = nullptr;
  gpu::DenseScratch d;
  DenseBenchBuffers(int64_t nmax, uint32_t seed, gpu::Stream s) {
    const size_t w16_bytes = gpu::MatMulDenseWeightBytes(GgmlType::Q4_K, kmax, 4096);
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t(nmax) * kmax * sizeof(float)));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), size_t(nmax) * kmax * sizeof(float)));
    CHECK_GPU(gpu::Malloc(&x16, gpu::MatMulDenseActivationBytes(kmax, nmax)));
    CHECK_GPU(gpu::Malloc(&w16, w16_bytes));
    std::vector<float> hx(size_t(nmax) * kmax);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
    d.w16 = w16;
    d.w16_bytes = w16_bytes;
    d.x16 = x16;
    d.x16_bytes = gpu::MatMulDenseActivationBytes(kmax, nmax);
  }
  ~DenseBenchBuffers() {
    gpu::Free(x);
    gpu::Free(y);
    gpu::Free(x16);
    gpu::Free(w16);
  }
};

// ---- dense prefill path (`bench_gpu_kernels dense`): per type and Llama-3-8B
// projection shape, at n = 128..2048, the in-loop-dequant GEMM (LaunchMatMulMma),
// the dense path as LaunchMatMul runs it (activation conversion + weight
// dequantization + f16 GEMM) and the f16 GEMM alone per row tile; then the
// dequantization's write rate per type and the f16 GEMM at 8192^3.
void RunDenseBench(gpu::Stream s) {
  struct Shape {
    int64_t m, k;
  };
  const int64_t nmax = 2048;
  DenseBenchBuffers buf(nmax, 13, s);
  const int64_t kmax = buf.kmax;
  float *x = buf.x, *y = buf.y;
  void *x16 = buf.x16, *w16 = buf.w16;
  const gpu::DenseScratch& d = buf.d;
  const gpu::DenseGemmConfig saved = gpu::GetDenseGemmConfig();
  std::printf("\n| dense type | m x k | n | in-loop mma us | TFLOP/s | dense path us | TFLOP/s | f16 GEMM auto us | TFLOP/s | 128/64/no-ov TFLOP/s | 128/32/ov | 128/32/no-ov | 256/64/ov | 256/64/no-ov |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16}) {
    for (Shape sh : {Shape{4096, 4096}, Shape{1024, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      // The f16 copy the GEMM-only columns read (dequantized once).
      const uint16_t* wf16 = type == GgmlType::F16 ? static_cast<const uint16_t*>(w[0]) : static_cast<uint16_t*>(w16);
      if (type != GgmlType::F16) gpu::LaunchDequantizeF16(type, w[0], sh.m, sh.k, static_cast<uint16_t*>(w16), s);
      gpu::LaunchConvertF16(x, int64_t(nmax) * sh.k, static_cast<uint16_t*>(x16), s);
      for (int n : {128, 192, 256, 384, 512, 1024, 2048}) {
        const double flop = 2.0 * sh.m * sh.k * n;
        const int iters = flop > 1e11 ? 5 : 20;
        auto time = [&](const std::function<void(int)>& f) {
          const double ms = bench::MedianMs(s, f, iters, 5, 3);
          CHECK_GPU(gpu::LastLaunchError());
          return ms;
        };
        gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{});
        const double mma = time([&](int i) { gpu::LaunchMatMulMma(type, w[i % copies], sh.m, sh.k, x, y, n, s); });
        gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{0, 0, 129, 0, 0});
        const double dense = time([&](int i) {
          gpu::LaunchMatMulDense(type, w[i % copies], sh.m, sh.k, x, y, n, d, s);
        });
        // f16 GEMM variants: row tile / K step / main loop (ov: barrier before the last slice).
        double g[6];
        const int tiles[6] = {0, 128, 128, 128, 256, 256}, ksteps[6] = {0, 64, 32, 32, 64, 64},
                  overlap[6] = {0, -1, 1, -1, 1, -1};
        for (int t = 0; t < 6; ++t) {
          gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{tiles[t], 0, 129, ksteps[t], overlap[t]});
          g[t] = time([&](int) {
            gpu::LaunchGemmF16(wf16, sh.m, sh.k, static_cast<const uint16_t*>(x16), y, n, s);
          });
        }
        auto tf = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
        std::printf("| %s | %lldx%lld | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
                    std::string(TypeName(type)).c_str(), static_cast<long long>(sh.m), static_cast<long long>(sh.k),
                    n, mma * 1e3, tf(mma), dense * 1e3, tf(dense), g[0] * 1e3, tf(g[0]), tf(g[1]), tf(g[2]),
                    tf(g[3]), tf(g[4]), tf(g[5]));
        std::fflush(stdout);
      }
      for (void* p : w) gpu::Free(p);
    }
  }
  gpu::SetDenseGemmConfig(saved);
  // Dequantization rate: f16 bytes written (and quantized bytes read) / time, 14336x4096.
  std::printf("\n| dequantize to f16, 14336x4096 | us | TB/s written | TB/s read+written |\n|---|---|---|---|\n");
  for (GgmlType type : {GgmlType::F32, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K,
                        GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q3_K, GgmlType::Q2_K}) {
    const int64_t m = 14336, k = 4096;
    const size_t bytes = RowBytes(type, k) * m;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<void*> w = MakeWeights(type, m, k, copies, s);
    const double ms = bench::MedianMs(s, [&](int i) {
      gpu::LaunchDequantizeF16(type, w[i % copies], m, k, static_cast<uint16_t*>(w16), s);
    }, 20, 5, 3);
    CHECK_GPU(gpu::LastLaunchError());
    const double written = 2.0 * m * k;
    std::printf("| %s | %.1f | %.2f | %.2f |\n", std::string(TypeName(type)).c_str(), ms * 1e3,
                written / (ms * 1e-3) / 1e12, (written + bytes) / (ms * 1e-3) / 1e12);
    std::fflush(stdout);
    for (void* p : w) gpu::Free(p);
  }
  {
    const double ms = bench::MedianMs(s, [&](int) {
      gpu::LaunchConvertF16(x, int64_t(nmax) * kmax, static_cast<uint16_t*>(x16), s);
    }, 20, 5, 3);
    std::printf("| activations f32 -> f16, %lldx%lld | %.1f | %.2f | %.2f |\n", static_cast<long long>(nmax),
                static_cast<long long>(kmax), ms * 1e3, 2.0 * nmax * kmax / (ms * 1e-3) / 1e12,
                6.0 * nmax * kmax / (ms * 1e-3) / 1e12);
  }
  // The f16 GEMM at the cuBLAS peak's shape (8192^3), random f16 operands.
  {
    const int64_t sq = 8192;
    void *a = nullptr, *b = nullptr;
    float* c = nullptr;
    CHECK_GPU(gpu::Malloc(&a, size_t(sq) * sq * 2));
    CHECK_GPU(gpu::Malloc(&b, size_t(sq) * sq * 2));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&c), size_t(sq) * sq * 4));
    {
      std::vector<float> hx(size_t(sq) * sq);
      std::mt19937 rng(17);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (float& v : hx) v = nd(rng);
      CHECK_GPU(gpu::CopyToDevice(c, hx.data(), hx.size() * sizeof(float), s));
      gpu::LaunchConvertF16(c, sq * sq, static_cast<uint16_t*>(a), s);
      gpu::LaunchConvertF16(c, sq * sq, static_cast<uint16_t*>(b), s);
    }
    for (int cfg = 0; cfg < 6; ++cfg) {
      const int tile = cfg % 2 == 0 ? 128 : 256, kstep = cfg < 4 ? 64 : 32, ov = cfg / 2 == 1 ? -1 : 1;
      gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{tile, 0, 0, kstep, ov});
      const double ms = bench::MedianMs(s, [&](int) {
        gpu::LaunchGemmF16(static_cast<const uint16_t*>(a), sq, sq, static_cast<const uint16_t*>(b), c,
                           static_cast<int>(sq), s);
      }, 5, 5, 2);
      CHECK_GPU(gpu::LastLaunchError());
      std::printf("\nf16 GEMM 8192^3, row tile %d, K step %d, overlap %d: %.3f ms = %.1f TFLOP/s\n", tile, kstep,
                  ov, ms,
                  2.0 * sq * sq * sq / (ms * 1e-3) / 1e12);
    }
    gpu::SetDenseGemmConfig(saved);
    gpu::Free(a);
    gpu::Free(b);
    gpu::Free(c);
  }
}

// ---- grouped batched GEMM (`bench_gpu_kernels gemm_group`): the matmuls of a
// Llama-3-8B layer that read the same activations (Q/K/V: 4096 + 1024 + 1024
// rows; gate/up: 2 x 14336 rows; K = 4096) as separate LaunchMatMulMma calls
// vs one LaunchMatMulMmaGroup, at the batched-decode token counts. Weights
// rotate over copies worth > 256 MiB.
void RunGroupBench(gpu::Stream s) {
  struct Group {
    const char* name;
    GgmlType type;
    std::vector<int64_t> rows;
  };
  const int64_t k = 4096;
  const std::vector<Group> groups = {{"Q/K/V", GgmlType::Q4_K, {4096, 1024, 1024}},
                                     {"Q/K (V apart)", GgmlType::Q4_K, {4096, 1024}},
                                     {"gate/up", GgmlType::Q4_K, {14336, 14336}},
                                     {"Q/K/V", GgmlType::Q6_K, {4096, 1024, 1024}},
                                     {"Q/K/V", GgmlType::Q8_0, {4096, 1024, 1024}},
                                     {"gate/up", GgmlType::Q8_0, {14336, 14336}}};
  const int nmax = 128;
  float* x = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t(nmax) * k * sizeof(float)));
  {
    std::vector<float> hx(size_t(nmax) * k);
    std::mt19937 rng(19);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
  }
  std::printf("\n| GEMM group | type | rows | n | separate us | grouped us | separate TB/s | grouped TB/s | gain |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  for (const Group& g : groups) {
    size_t bytes = 0;
    for (int64_t r : g.rows) bytes += RowBytes(g.type, k) * r;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<std::vector<void*>> w;  // [part][copy]
    std::vector<float*> y;
    std::string rows_s;
    for (int64_t r : g.rows) {
      w.push_back(MakeWeights(g.type, r, k, copies, s));
      float* p = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&p), size_t(nmax) * r * sizeof(float)));
      y.push_back(p);
      if (!rows_s.empty()) rows_s.push_back('+');
      rows_s.append(std::to_string(r));
    }
    for (int n : {16, 32, 48, 64, 96, 128}) {
      const size_t np = g.rows.size();
      const double sep = bench::MedianMs(s, [&](int i) {
        for (size_t p = 0; p < np; ++p) gpu::LaunchMatMulMma(g.type, w[p][i % copies], g.rows[p], k, x, y[p], n, s);
      }, 20, 5, 3);
      const double grp = bench::MedianMs(s, [&](int i) {
        gpu::MatVecPart parts[gpu::kMaxMatVecParts];
        for (size_t p = 0; p < np; ++p) parts[p] = gpu::MatVecPart{w[p][i % copies], y[p], g.rows[p]};
        gpu::LaunchMatMulMmaGroup(g.type, k, x, n, parts, static_cast<int>(np), s);
      }, 20, 5, 3);
      CHECK_GPU(gpu::LastLaunchError());
      std::printf("| %s | %s | %s | %d | %.1f | %.1f | %.2f | %.2f | %.2fx |\n", g.name,
                  std::string(TypeName(g.type)).c_str(), rows_s.c_str(), n, sep * 1e3, grp * 1e3,
                  bytes / (sep * 1e-3) / 1e12, bytes / (grp * 1e-3) / 1e12, sep / grp);
      std::fflush(stdout);
      if (n > 32 && n <= 64) {  // the v4 kernel (no parts table) vs v5 forced, grouped
        const gpu::GemmConfig saved = gpu::GetGemmConfig();
        gpu::GemmConfig v5;
        v5.narrow = 1;
        gpu::SetGemmConfig(v5);
        const double g5 = bench::MedianMs(s, [&](int i) {
          gpu::MatVecPart parts[gpu::kMaxMatVecParts];
          for (size_t p = 0; p < np; ++p) parts[p] = gpu::MatVecPart{w[p][i % copies], y[p], g.rows[p]};
          gpu::LaunchMatMulMmaGroup(g.type, k, x, n, parts, static_cast<int>(np), s);
        }, 20, 5, 3);
        gpu::SetGemmConfig(saved);
        CHECK_GPU(gpu::LastLaunchError());
        std::printf("| %s (v5 forced) | %s | %s | %d | %.1f | %.1f | %.2f | %.2f | %.2fx |\n", g.name,
                    std::string(TypeName(g.type)).c_str(), rows_s.c_str(), n, sep * 1e3, g5 * 1e3,
                    bytes / (sep * 1e-3) / 1e12, bytes / (g5 * 1e-3) / 1e12, sep / g5);
      }
    }
    for (auto& v : w)
      for (void* p : v) gpu::Free(p);
    for (float* p : y) gpu::Free(p);
  }
  gpu::Free(x);
}

// ---- int8 MMQ GEMM (`bench_gpu_kernels mmq`): the Llama-3-8B Q4_K_M layer
// shapes (grouped as the backend groups them) at the batched-decode token
// counts: the default choice (v5 / v4 / GemmMmaKernel from float x), v5
// forced (narrow 1), and MMQ (narrow 3) with and without its activation
// quantization (the backend fuses that into the producer where it can).
// Weights rotate over copies worth > 256 MiB; events, median of 3 x 20.
// `bench_gpu_kernels mmq [N,N,..]`: token counts (default 16,32,64,96,128).
void RunMmqBench(gpu::Stream s, const std::vector<int>& ns) {
  struct Group {
    const char* name;
    GgmlType type;
    std::vector<int64_t> rows;
    int64_t k;
  };
  const std::vector<Group> groups = {{"Q/K/V", GgmlType::Q4_K, {4096, 1024, 1024}, 4096},
                                     {"O", GgmlType::Q4_K, {4096}, 4096},
                                     {"gate/up", GgmlType::Q4_K, {14336, 14336}, 4096},
                                     {"down", GgmlType::Q4_K, {4096}, 14336},
                                     {"down", GgmlType::Q6_K, {4096}, 14336},
                                     {"V", GgmlType::Q6_K, {1024}, 4096}};
  const int nmax = 128;
  const int64_t kmax = 14336;
  float* x = nullptr;
  void* xq = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t(nmax) * kmax * sizeof(float)));
  CHECK_GPU(gpu::Malloc(&xq, gpu::MatMulMmqScratchBytes(kmax, nmax)));
  {
    std::vector<float> hx(size_t(nmax) * kmax);
    std::mt19937 rng(23);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
  }
  std::printf("\n| MMQ group | type | rows x k | n | default us | v5 us | MMQ us | MMQ+quant us | MMQ TB/s | MMQ / v5 | MMQ+q / default |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n");
  const gpu::GemmConfig saved = gpu::GetGemmConfig();
  for (const Group& g : groups) {
    size_t bytes = 0;
    for (int64_t r : g.rows) bytes += RowBytes(g.type, g.k) * r;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<std::vector<void*>> w;
    std::vector<float*> y;
    std::string rows_s;
    for (int64_t r : g.rows) {
      w.push_back(MakeWeights(g.type, r, g.k, copies, s));
      float* p = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&p), size_t(nmax) * r * sizeof(float)));
      y.push_back(p);
      if (!rows_s.empty()) rows_s.push_back('+');
      rows_s.append(std::to_string(r));
    }
    const size_t np = g.rows.size();
    auto parts_of = [&](int i, gpu::MatVecPart* parts) {
      for (size_t p = 0; p < np; ++p) parts[p] = gpu::MatVecPart{w[p][i % copies], y[p], g.rows[p]};
    };
    for (int n : ns) {
      auto time_float = [&](gpu::GemmConfig cfg) {
        gpu::SetGemmConfig(cfg);
        return bench::MedianMs(s, [&](int i) {
          gpu::MatVecPart parts[gpu::kMaxMatVecParts];
          parts_of(i, parts);
          gpu::LaunchMatMulMmaGroup(g.type, g.k, x, n, parts, static_cast<int>(np), s);
        }, 20, 5, 3);
      };
      const double def = time_float(gpu::GemmConfig{});
      const double v5 = time_float(gpu::GemmConfig{0, 0, 1, 0});
      gpu::SetGemmConfig(gpu::GemmConfig{0, 0, 3, 0});
      gpu::LaunchQuantizeActivation(g.type, x, int64_t(n) * g.k, xq, s);
      const double mmq = bench::MedianMs(s, [&](int i) {
        gpu::MatVecPart parts[gpu::kMaxMatVecParts];
        parts_of(i, parts);
        gpu::LaunchMatMulMmqGroup(g.type, g.k, xq, n, parts, static_cast<int>(np), s);
      }, 20, 5, 3);
      const double mmqq = bench::MedianMs(s, [&](int i) {
        gpu::MatVecPart parts[gpu::kMaxMatVecParts];
        parts_of(i, parts);
        gpu::LaunchQuantizeActivation(g.type, x, int64_t(n) * g.k, xq, s);
        gpu::LaunchMatMulMmqGroup(g.type, g.k, xq, n, parts, static_cast<int>(np), s);
      }, 20, 5, 3);
      CHECK_GPU(gpu::LastLaunchError());
      std::printf("| %s | %s | %sx%lld | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2fx | %.2fx |\n", g.name,
                  std::string(TypeName(g.type)).c_str(), rows_s.c_str(), static_cast<long long>(g.k), n, def * 1e3,
                  v5 * 1e3, mmq * 1e3, mmqq * 1e3, bytes / (mmq * 1e-3) / 1e12, v5 / mmq, def / mmqq);
      std::fflush(stdout);
      // Split / tile sweep of MMQ at this n (us): forced K splits, then forced tiles.
      std::string sweep;
      for (gpu::GemmConfig c : {gpu::GemmConfig{0, 0, 3, 1}, gpu::GemmConfig{0, 0, 3, 2}, gpu::GemmConfig{0, 0, 3, 4},
                                gpu::GemmConfig{0, 0, 3, 8}, gpu::GemmConfig{0, 3, 3, 0}, gpu::GemmConfig{0, 4, 3, 0},
                                gpu::GemmConfig{16, 0, 3, 0}, gpu::GemmConfig{32, 0, 3, 0}, gpu::GemmConfig{64, 0, 3, 0},
                                gpu::GemmConfig{128, 0, 3, 0}, gpu::GemmConfig{128, 0, 3, 1},
                                gpu::GemmConfig{128, 0, 3, 2}, gpu::GemmConfig{128, 0, 3, 4}}) {
        gpu::SetGemmConfig(c);
        const double ms = bench::MedianMs(s, [&](int i) {
          gpu::MatVecPart parts[gpu::kMaxMatVecParts];
          parts_of(i, parts);
          gpu::LaunchMatMulMmqGroup(g.type, g.k, xq, n, parts, static_cast<int>(np), s);
        }, 10, 3, 3);
        char buf[96];
        std::snprintf(buf, sizeof(buf), " t%d/s%d/b%d %.1f", c.token_tile, c.splits, c.blocks_per_sm, ms * 1e3);
        sweep += buf;
      }
      CHECK_GPU(gpu::LastLaunchError());
      std::printf("mmq sweep %s %s n=%d:%s\n", g.name, std::string(TypeName(g.type)).c_str(), n, sweep.c_str());
    }
    for (auto& v : w)
      for (void* p : v) gpu::Free(p);
    for (float* p : y) gpu::Free(p);
  }
  gpu::SetGemmConfig(saved);
  gpu::Free(x);
  gpu::Free(xq);
}

// ---- the f16 GEMM alone, mma.sync kernel vs the Hopper wgmma one
// (`bench_gpu_kernels dense_wgmma`, also at the end of `dense`): auto tiles /
// splits each, Llama-3-8B shapes, random f16 operands (one weight copy, as
// the `dense` table's f16 GEMM columns), and the fused gate / up + SwiGLU GEMM
// of the 2 x 14336 x 4096 pair (out + out16, no gate / up copies).
void RunDenseWgmmaBench(gpu::Stream s) {
  struct Shape {
    int64_t m, k;
    bool swiglu;
  };
  const int64_t mmax = 28672, kmax = 14336, nmax = 2048;
  const size_t wvals = size_t(mmax) * 4096;  // the largest weight matrix (both 4096 x 14336 and the pair fit)
  float *f = nullptr, *y = nullptr;
  void *w16 = nullptr, *x16 = nullptr, *o16 = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&f), wvals * sizeof(float)));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), size_t(nmax) * mmax * sizeof(float)));
  CHECK_GPU(gpu::Malloc(&w16, wvals * 2));
  CHECK_GPU(gpu::Malloc(&x16, size_t(nmax) * kmax * 2));
  CHECK_GPU(gpu::Malloc(&o16, size_t(nmax) * mmax));
  {
    std::vector<float> h(wvals);
    std::mt19937 rng(23);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : h) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(f, h.data(), h.size() * sizeof(float), s));
    gpu::LaunchConvertF16(f, int64_t(wvals), static_cast<uint16_t*>(w16), s);
    gpu::LaunchConvertF16(f + 12345, nmax * kmax, static_cast<uint16_t*>(x16), s);
    CHECK_GPU(gpu::LastLaunchError());
  }
  const gpu::DenseGemmConfig saved = gpu::GetDenseGemmConfig();
  const bool saved_wgmma = gpu::GetDenseWgmma();
  gpu::SetDenseGemmConfig(gpu::DenseGemmConfig{});
  std::printf("\n| f16 GEMM m x k | n | mma.sync us | TFLOP/s | wgmma us | TFLOP/s | new/old | wgmma 128 TFLOP/s | 224 | 256 | SwiGLU direct stores |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (Shape sh : {Shape{4096, 4096, false}, Shape{1024, 4096, false}, Shape{14336, 4096, false},
                   Shape{4096, 14336, false}, Shape{28672, 4096, true}, Shape{28672, 4096, false}}) {
    for (int n : {160, 256, 448, 512, 1024, 2048}) {
      const double flop = 2.0 * sh.m * sh.k * n;
      const int iters = flop > 1e11 ? 5 : 20;
      // mma.sync, wgmma auto, wgmma with 128 / 224 / 256-row tiles, SwiGLU with direct stores (auto tile)
      double ms[6] = {0, 0, 0, 0, 0, 0};
      const bool staged = gpu::GetDenseWgmmaStagedSwiGLU();
      for (int v = 0; v < (sh.swiglu ? 6 : 5); ++v) {
        gpu::SetDenseWgmma(v >= 1);
        gpu::SetDenseWgmmaTile(v <= 1 || v == 5 ? 0 : v == 2 ? 128 : v == 3 ? 224 : 256);
        gpu::SetDenseWgmmaStagedSwiGLU(v == 5 ? !staged : staged);
        ms[v] = bench::MedianMs(s, [&](int) {
          if (sh.swiglu) {
            gpu::LaunchGemmF16SwiGLU(static_cast<const uint16_t*>(w16), sh.m, sh.k, static_cast<const uint16_t*>(x16),
                                     y, static_cast<uint16_t*>(o16), nullptr, nullptr, n, s);
          } else {
            gpu::LaunchGemmF16(static_cast<const uint16_t*>(w16), sh.m, sh.k, static_cast<const uint16_t*>(x16), y,
                               n, s);
          }
        }, iters, 5, 3);
        CHECK_GPU(gpu::LastLaunchError());
      }
      gpu::SetDenseWgmmaStagedSwiGLU(staged);
      auto tf = [&](double t) { return t > 0.0 ? flop / (t * 1e-3) / 1e12 : 0.0; };
      std::printf("| %lldx%lld%s | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f |\n",
                  static_cast<long long>(sh.m), static_cast<long long>(sh.k), sh.swiglu ? " SwiGLU" : "", n,
                  ms[0] * 1e3, tf(ms[0]), ms[1] * 1e3, tf(ms[1]), ms[0] / ms[1], tf(ms[2]), tf(ms[3]), tf(ms[4]),
                  tf(ms[5]));
      std::fflush(stdout);
    }
  }
  gpu::SetDenseWgmma(saved_wgmma);
  gpu::SetDenseWgmmaTile(0);
  gpu::SetDenseGemmConfig(saved);
  gpu::Free(f);
  gpu::Free(y);
  gpu::Free(w16);
  gpu::Free(x16);
  gpu::Free(o16);
}

// ---- dense crossover (`bench_gpu_kernels crossover`): per type and shape, the
// in-loop GEMM's automatic choice (LaunchMatMulMma: v5 / v4 / GemmMmaKernel)
// against the whole dense path (activation conversion + dequantization + f16
// GEMM, LaunchMatMulDense) at n = 64..512, including the 1024-row K/V shape
// whose f16 copy (8 MiB) stays in L2. The crossover per shape is the smallest
// n from which dense is faster at every larger n measured.
void RunCrossoverBench(gpu::Stream s) {
  struct Shape {
    int64_t m, k;
  };
  const int64_t nmax = 512;
  DenseBenchBuffers buf(nmax, 23, s);
  float *x = buf.x, *y = buf.y;
  const gpu::DenseScratch& d = buf.d;
  const std::vector<int> ns = {64, 96, 128, 192, 256, 384, 512};
  std::printf("\n| crossover type | m x k | n | in-loop us | dense us | dense/in-loop |\n|---|---|---|---|---|---|\n");
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    for (Shape sh : {Shape{4096, 4096}, Shape{1024, 4096}, Shape{14336, 4096}, Shape{4096, 14336}}) {
      const size_t bytes = RowBytes(type, sh.k) * sh.m;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, sh.m, sh.k, copies, s);
      int cross = 0;
      for (int n : ns) {
        const double mma = bench::MedianMs(s, [&](int i) {
          gpu::LaunchMatMulMma(type, w[i % copies], sh.m, sh.k, x, y, n, s);
        }, 10, 5, 3);
        const double dense = bench::MedianMs(s, [&](int i) {
          gpu::LaunchMatMulDense(type, w[i % copies], sh.m, sh.k, x, y, n, d, s);
        }, 10, 5, 3);
        CHECK_GPU(gpu::LastLaunchError());
        if (dense < mma && cross == 0) cross = n;
        if (dense >= mma) cross = 0;
        std::printf("| %s | %lldx%lld | %d | %.1f | %.1f | %.2f |\n", std::string(TypeName(type)).c_str(),
                    static_cast<long long>(sh.m), static_cast<long long>(sh.k), n, mma * 1e3, dense * 1e3,
                    dense / mma);
        std::fflush(stdout);
      }
      std::printf("| %s | %lldx%lld | crossover | %s |  |  |\n", std::string(TypeName(type)).c_str(),
                  static_cast<long long>(sh.m), static_cast<long long>(sh.k),
                  cross > 0 ? std::to_string(cross).c_str() : "> 512");
      for (void* p : w) gpu::Free(p);
    }
  }
}

// ---- sampler on wide rows: near-flat logits (N(0, 0.3), like the random-weight
// model's) whose outcome needs more candidates than the sorted list holds, with
// the refinement (gpu::SampleConfig::refine_wide_rows, the default) and without
// (the single-block radix selects), and refined with batched row passes
// (SampleConfig::batched_row_passes), alternating in one run. Host clock per
// GpuBackend::Sample (upload + device + download, median of 15) and device
// time of LaunchSample alone (events, median).
void RunWideSamplerBench(GpuBackend* be, gpu::Stream s) {
  const int vocab = 128256, max_rows = 32;
  std::vector<float> logits(size_t(max_rows) * vocab);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  for (float& v : logits) v = nd(rng);
  float* dl = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&dl), logits.size() * sizeof(float)));
  CHECK_GPU(gpu::CopyToDevice(dl, logits.data(), logits.size() * sizeof(float), s));
  void *dp = nullptr, *dres = nullptr, *dscr = nullptr;
  int32_t* drec = nullptr;
  CHECK_GPU(gpu::Malloc(&dp, max_rows * sizeof(gpu::SampleRowParams)));
  CHECK_GPU(gpu::Malloc(&dres, max_rows * sizeof(gpu::SampleRowResult)));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&drec), sizeof(int32_t)));
  CHECK_GPU(gpu::Malloc(&dscr, gpu::SampleScratchBytes(max_rows, vocab)));
  struct P {
    const char* name;
    SamplingParams p;
  };
  SamplingParams temp;
  temp.temperature = 0.7f;
  SamplingParams topp = temp;
  topp.top_p = 0.9f;
  SamplingParams topk = temp;
  topk.top_k = 4096;
  SamplingParams minp = temp;
  minp.min_p = 0.05f;
  SamplingParams peaked = topp;  // the same logits x (1 / 0.07): sd 4.3, a few hundred candidates
  peaked.temperature = 0.07f;
  std::printf("\n| sampler, vocab 128256, flat rows N(0, 0.3) | rows | host us/row: radix (old) / refined / "
              "refined, batched passes | device us/row: radix / refined / batched | path of row 0 | speed-up |\n"
              "|---|---|---|---|---|---|\n");
  const gpu::SampleConfig saved = gpu::GetSampleConfig();
  for (P p : {P{"temperature 0.7", temp}, P{"top-p 0.9, T 0.7", topp}, P{"top-k 4096, T 0.7", topk},
              P{"min-p 0.05, T 0.7", minp}, P{"peaked reference: top-p 0.9, T 0.07", peaked}}) {
    std::vector<SampleRequest> req(max_rows);
    std::vector<gpu::SampleRowParams> hp(max_rows);
    for (int r = 0; r < max_rows; ++r) {
      req[r].params = p.p;
      req[r].params.seed = 1000 + r;
      req[r].step = 7;
      gpu::SampleRowParams& q = hp[r];
      q = gpu::SampleRowParams{};
      q.temperature = p.p.temperature;
      q.top_k = p.p.top_k;
      q.top_p = p.p.top_p;
      q.min_p = p.p.min_p;
      q.repetition_penalty = 1.0f;
      q.seed = req[r].params.seed;
      q.step = req[r].step;
    }
    CHECK_GPU(gpu::CopyToDevice(dp, hp.data(), hp.size() * sizeof(gpu::SampleRowParams), s));
    std::vector<SampleResult> res(max_rows);
    for (int rows : {1, 32}) {
      double host_us[3], dev_us[3];
      std::vector<double> h[3];
      for (int rep = 0; rep < 17; ++rep) {
        for (int k : {0, 1, 2}) {  // 0: radix selects, 1: refined, 2: refined with batched passes
          gpu::SetSampleConfig({.refine_wide_rows = k >= 1, .batched_row_passes = k == 2});
          auto a = std::chrono::steady_clock::now();
          (void)be->Sample(dl, rows, vocab, req.data(), res.data());
          if (rep >= 2) {
            h[k].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
          }
        }
      }
      for (int k : {0, 1, 2}) {
        std::sort(h[k].begin(), h[k].end());
        host_us[k] = h[k][h[k].size() / 2] / rows;
        gpu::SetSampleConfig({.refine_wide_rows = k >= 1, .batched_row_passes = k == 2});
        dev_us[k] = 1e3 * bench::MedianMs(s, [&](int) {
          gpu::LaunchSample(dl, rows, vocab, static_cast<const gpu::SampleRowParams*>(dp), drec,
                            static_cast<gpu::SampleRowResult*>(dres), dscr, s);
        }, k == 0 ? 3 : 20, 5, 2) / rows;
      }
      gpu::SampleRowResult r0{};
      CHECK_GPU(gpu::CopyToHost(&r0, dres, sizeof(r0), s));
      CHECK_GPU(gpu::StreamSync(s));
      std::printf("| %s | %d | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %d | %.0fx |\n", p.name, rows, host_us[0],
                  host_us[1], host_us[2], dev_us[0], dev_us[1], dev_us[2], r0.path, host_us[0] / host_us[1]);
      std::fflush(stdout);
    }
  }
  gpu::SetSampleConfig(saved);
  std::printf("(path: %d list, %d refined, %d radix selects)\n", gpu::kSamplePathList, gpu::kSamplePathRefine,
              gpu::kSamplePathSingleBlock);
  gpu::Free(dl);
  gpu::Free(dp);
  gpu::Free(dres);
  gpu::Free(drec);
  gpu::Free(dscr);
}


// ---- batched decode attention (`bench_gpu_kernels attention`): Llama-3-8B
// heads (32 query / 8 KV, head_dim 128, f16 K/V in pages of 16 positions) at
// 1 / 8 / 32 / 64 sequences x contexts 128 / 512 / 2048 (and, from 8
// sequences, contexts spread over 100..1500 as in the worker), one decode token
// each, for the SIMT grouped kernel and the matrix-core one
// (gpu::DecodeAttnConfig), merge kernel included. Each launch reads another
// set of scattered pages of a 512 MiB pool (sets rotate over > 4x L2 where the
// pool allows), so K/V come from device memory; TB/s = K/V bytes / time.
// Random K/V, queries and tables; events, median of 7 x 20.
// only_seqs > 0: that one shape, kernel `only_kernel` (DecodeAttnConfig::kernel),
// 20 launches and no table (`bench_gpu_kernels attention1 SEQS CTX KERNEL`, for a profiler).
void RunAttentionBench(gpu::Stream s, int only_seqs = 0, int only_ctx = 0, int only_kernel = 0) {
  constexpr int kHeads = 32, kKv = 8, kDim = 128, kPage = 16;
  constexpr int kPoolPages = 8192;  // 131072 positions x 8 KV heads x 128 x 2 (K, V) x 2 B = 512 MiB
  const int64_t kv_dim = kKv * kDim;
  const size_t cache_halves = size_t{kPoolPages} * kPage * kv_dim;
  uint16_t *kc = nullptr, *vc = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&kc), cache_halves * 2));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&vc), cache_halves * 2));
  {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<uint16_t> h(size_t{8} << 20);
    for (auto& x : h) x = Fp32ToFp16(nd(rng));
    for (size_t off = 0; off < cache_halves; off += h.size()) {
      const size_t n = std::min(h.size(), cache_halves - off);
      CHECK_GPU(gpu::CopyToDevice(kc + off, h.data(), n * 2, s));
      CHECK_GPU(gpu::CopyToDevice(vc + (cache_halves - off - n), h.data(), n * 2, s));
    }
  }
  const int max_seqs = 64;
  float *q = nullptr, *out = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&q), size_t{max_seqs} * kHeads * kDim * 4));
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&out), size_t{max_seqs} * kHeads * kDim * 4));
  {
    std::vector<float> hq(size_t{max_seqs} * kHeads * kDim);
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hq) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(q, hq.data(), hq.size() * 4, s));
  }
  const size_t scratch_bytes = gpu::AttentionScratchBytes(max_seqs, kHeads, kDim, 2048);
  void* scratch = nullptr;
  CHECK_GPU(gpu::Malloc(&scratch, std::max<size_t>(scratch_bytes, 16)));
  CHECK_GPU(gpu::AttentionScratchInit(scratch, scratch_bytes, s));
  const gpu::DecodeAttnConfig saved = gpu::GetDecodeAttnConfig();
  std::printf("\n| decode attention (32 q / 8 kv heads, d 128) | seqs | ctx | K/V MiB | kernel | us | TB/s |\n"
              "|---|---|---|---|---|---|---|\n");
  for (int seqs : {1, 8, 32, 64}) {
    // ctx 0: the worker's mix, contexts spread over 100..1500 in shuffled order.
    for (int ctx : {128, 512, 2048, 0}) {
      if (only_seqs > 0 && (seqs != only_seqs || ctx != only_ctx)) continue;
      if (ctx == 0 && seqs < 8) continue;
      auto ctx_of = [&](int i) { return ctx > 0 ? ctx : 100 + 1400 * ((i * 7) % seqs) / (seqs - 1); };
      int pages = 0;
      double keys = 0.0;
      for (int i = 0; i < seqs; ++i) {
        pages += (ctx_of(i) + kPage - 1) / kPage;
        keys += ctx_of(i);
      }
      const double bytes = 2.0 * keys * kv_dim * 2;
      const std::string ctx_label = ctx > 0 ? std::to_string(ctx) : "100..1500";
      // Table sets: disjoint pages while the pool allows, enough to rotate
      // over >= 256 MiB when it does.
      const int sets = std::max(1, std::min<int>(kPoolPages / pages, static_cast<int>((256.0 * 1048576) / bytes) + 1));
      std::mt19937 rng(seqs * 7919 + ctx);
      std::vector<int32_t> ids(kPoolPages);
      for (int i = 0; i < kPoolPages; ++i) ids[i] = i;
      std::shuffle(ids.begin(), ids.end(), rng);
      std::vector<int32_t> h_tables(size_t(sets) * pages), h_seq(seqs), h_ctx(seqs), h_off(seqs);
      for (size_t i = 0; i < h_tables.size(); ++i) h_tables[i] = ids[i % kPoolPages];
      for (int i = 0, off = 0; i < seqs; ++i) {
        h_seq[i] = i;
        h_ctx[i] = ctx_of(i);
        h_off[i] = off;
        off += (ctx_of(i) + kPage - 1) / kPage;
      }
      int32_t *d_tables = nullptr, *d_meta = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&d_tables), h_tables.size() * 4));
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&d_meta), size_t(seqs) * 3 * 4));
      CHECK_GPU(gpu::CopyToDevice(d_tables, h_tables.data(), h_tables.size() * 4, s));
      CHECK_GPU(gpu::CopyToDevice(d_meta, h_seq.data(), size_t(seqs) * 4, s));
      CHECK_GPU(gpu::CopyToDevice(d_meta + seqs, h_ctx.data(), size_t(seqs) * 4, s));
      CHECK_GPU(gpu::CopyToDevice(d_meta + 2 * seqs, h_off.data(), size_t(seqs) * 4, s));
      auto batch = [&](int i) {
        gpu::AttnBatch b;
        b.token_seq = d_meta;
        b.token_ctx = d_meta + seqs;
        b.seq_table_off = d_meta + 2 * seqs;
        b.block_tables = d_tables + size_t(i % sets) * pages;
        b.n_tokens = seqs;
        b.max_ctx = ctx > 0 ? ctx : 1500;
        return b;
      };
      // SIMT, matrix cores (PDL on, the default, and off; PDL overlaps a
      // launch's metadata reads with the previous launch's tail), and matrix
      // cores split for 132 / 1024 blocks instead of one wave of resident ones.
      struct Variant {
        const char* name;
        gpu::DecodeAttnConfig cfg;
        bool pdl;
      };
      const bool pdl_saved = gpu::GetPdl();
      const Variant variants[] = {{"simt", {-1, 0, 0}, pdl_saved},      {"mma", {1, 0, 0}, pdl_saved},
                                  {"mma, PDL off", {1, 0, 0}, false},   {"mma t132", {1, 0, 132}, pdl_saved},
                                  {"mma t1024", {1, 0, 1024}, pdl_saved}};
      if (only_seqs > 0) {
        gpu::SetDecodeAttnConfig(gpu::DecodeAttnConfig{only_kernel, 0, 0});
        for (int i = 0; i < 20; ++i) {
          gpu::LaunchAttention(q, out, batch(i), kHeads, kKv, kDim, 0.088f, kc, vc, kPage, scratch, s);
        }
        CHECK_GPU(gpu::StreamSync(s));
      }
      for (const Variant& v : variants) {
        if (only_seqs > 0) break;
        gpu::SetDecodeAttnConfig(v.cfg);
        gpu::SetPdl(v.pdl);
        const double ms = bench::MedianMs(s, [&](int i) {
          gpu::LaunchAttention(q, out, batch(i), kHeads, kKv, kDim, 0.088f, kc, vc, kPage, scratch, s);
        }, 20, 7, 5);
        CHECK_GPU(gpu::LastLaunchError());
        std::printf("| | %d | %s | %.1f | %s | %.1f | %.2f |\n", seqs, ctx_label.c_str(), bytes / 1048576.0, v.name,
                    ms * 1e3, bytes / (ms * 1e-3) / 1e12);
        std::fflush(stdout);
      }
      gpu::SetPdl(pdl_saved);
      gpu::Free(d_tables);
      gpu::Free(d_meta);
    }
  }
  gpu::SetDecodeAttnConfig(saved);
  gpu::Free(scratch);
  gpu::Free(q);
  gpu::Free(out);
  gpu::Free(kc);
  gpu::Free(vc);
}

}  // namespace

// The parts of a group stacked in one weight copy (rows of part p after those
// of parts 0..p-1) writing y at the same offsets.
void StackedParts(const void* w, size_t row_bytes, const std::vector<int64_t>& rows, float* y,
                  gpu::MatVecPart* ps) {
  const uint8_t* base = static_cast<const uint8_t*>(w);
  int64_t r0 = 0;
  for (size_t p = 0; p < rows.size(); ++p) {
    ps[p] = gpu::MatVecPart{base + r0 * row_bytes, y + r0, rows[p]};
    r0 += rows[p];
  }
}

// ---- the bulk-copy batch-1 matvec (kernels/matvec_stream.hip) against the
// portable kernels at the Llama-3-8B decode shapes of the Q4_K_M and Q8_0
// models (the types and groups a decode step launches), activations quantized
// beforehand, kernel alone with PDL off and on (back-to-back launches, as in a
// decode step). Weights rotate over copies worth > 256 MiB. Rows: the
// portable automatic shape, the stream defaults, then ring settings (slots x
// slot bytes x warps a block x blocks an SM).
void RunMatVecStreamBench(gpu::Stream s, bool sweep) {
  const int64_t kmax = 14336;
  std::vector<float> hx(kmax);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : hx) v = nd(rng);
  float* x = nullptr;
  void* xq = nullptr;
  CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), kmax * sizeof(float)));
  CHECK_GPU(gpu::Malloc(&xq, gpu::MatMulScratchBytes(kmax, 1)));
  CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
  struct Shape {
    GgmlType type;
    const char* name;
    std::vector<int64_t> parts;
    int64_t k;
  };
  const std::vector<Shape> shapes = {
      {GgmlType::Q4_K, "gate+up", {14336, 14336}, 4096}, {GgmlType::Q4_K, "down", {4096}, 14336},
      {GgmlType::Q6_K, "down", {4096}, 14336},           {GgmlType::Q4_K, "Q+K", {4096, 1024}, 4096},
      {GgmlType::Q4_K, "Q+K+V", {4096, 1024, 1024}, 4096}, {GgmlType::Q6_K, "V", {1024}, 4096},
      {GgmlType::Q4_K, "O", {4096}, 4096},               {GgmlType::Q6_K, "head", {128256}, 4096},
      {GgmlType::Q8_0, "gate+up", {14336, 14336}, 4096}, {GgmlType::Q8_0, "down", {4096}, 14336},
      {GgmlType::Q8_0, "Q+K+V", {4096, 1024, 1024}, 4096}, {GgmlType::Q8_0, "O", {4096}, 4096},
      {GgmlType::Q8_0, "head", {128256}, 4096}};
  std::printf("| type | matrix | rows x k | kernel (slots, slot bytes, warps, blocks/SM, early slots) | us | TB/s | us PDL on | TB/s PDL on |\n"
              "|---|---|---|---|---|---|---|---|\n");
  const gpu::MatVecConfig saved = gpu::GetMatVecConfig();
  const bool saved_pdl = gpu::GetPdl();
  for (const Shape& sh : shapes) {
    int64_t total_rows = 0;
    for (int64_t r : sh.parts) total_rows += r;
    const size_t row_bytes = RowBytes(sh.type, sh.k);
    const size_t bytes = row_bytes * total_rows;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<void*> w = MakeWeights(sh.type, total_rows, sh.k, copies, s);
    float* yp = nullptr;
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&yp), total_rows * sizeof(float)));
    gpu::LaunchQuantizeActivation(sh.type, x, sh.k, xq, s);
    auto launch = [&](int i) {
      const uint8_t* base = static_cast<const uint8_t*>(w[i % copies]);
      gpu::MatVecPart ps[gpu::kMaxMatVecParts];
      StackedParts(base, row_bytes, sh.parts, yp, ps);
      if (sh.parts.size() == 1) {
        gpu::LaunchMatMulSmallBatchQuantized(sh.type, base, total_rows, sh.k, xq, yp, 1, s);
      } else {
        gpu::LaunchMatVecQuantizedGroup(sh.type, sh.k, xq, ps, static_cast<int>(sh.parts.size()), s);
      }
    };
    std::vector<gpu::MatVecConfig> cfgs;
    cfgs.push_back(gpu::MatVecConfig{});  // the portable kernels (automatic shape)
    auto stream_cfg = [](int slots, int slot_bytes, int warps, int per_sm, int early) {
      gpu::MatVecConfig c;
      c.stream = 1;
      c.stream_slots = slots;
      c.stream_slot_bytes = slot_bytes;
      c.stream_warps = warps;
      c.stream_blocks_per_sm = per_sm;
      c.stream_early = early;
      return c;
    };
    for (gpu::MatVecConfig c : {stream_cfg(0, 0, 0, 0, -1), stream_cfg(0, 0, 0, 0, 0), stream_cfg(0, 0, 0, 0, 1), stream_cfg(3, 0, 0, 0, -1),
                                stream_cfg(4, 0, 0, 0, -1), stream_cfg(0, 1536, 0, 0, -1), stream_cfg(0, 4608, 0, 0, -1),
                                stream_cfg(0, 0, 0, 3, -1), stream_cfg(0, 0, 8, 0, -1), stream_cfg(0, 0, 2, 0, -1)}) {
      cfgs.push_back(c);
    }
    if (sweep) {
      for (int slots : {2, 4, 8}) {
        for (int slot_bytes : {1536, 3072, 6144}) {
          for (int warps : {2, 4, 8}) {
            for (int per_sm : {0, 1}) {
              gpu::MatVecConfig c;
              c.stream = 1;
              c.stream_slots = slots;
              c.stream_slot_bytes = slot_bytes;
              c.stream_warps = warps;
              c.stream_blocks_per_sm = per_sm;
              cfgs.push_back(c);
            }
          }
        }
      }
    }
    for (const gpu::MatVecConfig& c : cfgs) {
      gpu::SetMatVecConfig(c);
      double ms[2];
      for (int pdl = 0; pdl < 2; ++pdl) {
        gpu::SetPdl(pdl == 1);
        ms[pdl] = bench::MedianMs(s, launch, 50, 5, 10);
        CHECK_GPU(gpu::LastLaunchError());
      }
      char kernel[96];
      if (c.stream != 1) {
        std::snprintf(kernel, sizeof(kernel), "portable (auto shape)");
      } else {
        std::snprintf(kernel, sizeof(kernel), "stream %d, %d, %d, %d, early %d", c.stream_slots,
                      c.stream_slot_bytes, c.stream_warps, c.stream_blocks_per_sm, c.stream_early);
      }
      std::printf("| %s | %s | %lldx%lld | %s | %.2f | %.2f | %.2f | %.2f |\n",
                  std::string(TypeName(sh.type)).c_str(), sh.name, static_cast<long long>(total_rows),
                  static_cast<long long>(sh.k), kernel, ms[0] * 1e3, bytes / (ms[0] * 1e-3) / 1e12,
                  ms[1] * 1e3, bytes / (ms[1] * 1e-3) / 1e12);
    }
    std::fflush(stdout);
    gpu::Free(yp);
    for (void* p : w) gpu::Free(p);
  }
  // What the two small kernels in front of a matvec cost in a PDL chain (as a
  // decode step runs them): AddRmsNorm -> activation quantization -> the group
  // matvec, against the matvec alone on activations quantized beforehand; the
  // difference is what a matvec that normalized and quantized its own input
  // could save at most (it would add its in-block norm to its own time).
  std::printf("\n| type | matrix | kernel | AddRmsNorm + quantize + matvec us | matvec alone us | difference us | RmsNorm + quantize + matvec us | norm in every block (LaunchMatVecGroupNormIn, 8 warps) us (2 / 3 / 1 blocks a SM) |\n"
              "|---|---|---|---|---|---|---|---|\n");
  gpu::SetPdl(true);
  {
    float *xr = nullptr, *res = nullptr, *nw = nullptr, *out = nullptr;
    const int64_t dim = 4096;
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&xr), dim * sizeof(float)));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&res), dim * sizeof(float)));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&nw), dim * sizeof(float)));
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&out), dim * sizeof(float)));
    std::vector<float> small(dim);
    for (float& v : small) v = 1e-3f * nd(rng);
    CHECK_GPU(gpu::CopyToDevice(xr, hx.data(), dim * sizeof(float), s));
    CHECK_GPU(gpu::CopyToDevice(res, small.data(), dim * sizeof(float), s));
    CHECK_GPU(gpu::CopyToDevice(nw, hx.data() + dim, dim * sizeof(float), s));
    struct Chain {
      GgmlType type;
      const char* name;
      std::vector<int64_t> parts;
    };
    for (const Chain& ch : {Chain{GgmlType::Q4_K, "gate+up", {14336, 14336}}, Chain{GgmlType::Q4_K, "Q+K", {4096, 1024}},
                            Chain{GgmlType::Q8_0, "gate+up", {14336, 14336}}, Chain{GgmlType::Q8_0, "Q+K+V", {4096, 1024, 1024}}}) {
      int64_t total_rows = 0;
      for (int64_t r : ch.parts) total_rows += r;
      const size_t row_bytes = RowBytes(ch.type, dim);
      const size_t bytes = row_bytes * total_rows;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(ch.type, total_rows, dim, copies, s);
      float* yp = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&yp), total_rows * sizeof(float)));
      auto matvec = [&](int i) {
        gpu::MatVecPart ps[gpu::kMaxMatVecParts];
        StackedParts(w[i % copies], row_bytes, ch.parts, yp, ps);
        gpu::LaunchMatVecQuantizedGroup(ch.type, dim, xq, ps, static_cast<int>(ch.parts.size()), s);
      };
      auto chain = [&](int i) {
        gpu::LaunchAddRmsNorm(xr, res, nw, out, 1, static_cast<int>(dim), 1e-5f, s);
        gpu::LaunchQuantizeActivation(ch.type, out, dim, xq, s);
        matvec(i);
      };
      auto plain_chain = [&](int i) {
        gpu::LaunchRmsNorm(xr, nw, out, 1, static_cast<int>(dim), 1e-5f, s);
        gpu::LaunchQuantizeActivation(ch.type, out, dim, xq, s);
        matvec(i);
      };
      auto norm_in_blocks = [&](int i) {
        gpu::MatVecPart ps[gpu::kMaxMatVecParts];
        StackedParts(w[i % copies], row_bytes, ch.parts, yp, ps);
        gpu::MatVecNormIn norm;
        norm.x = xr;
        norm.w = nw;
        norm.eps = 1e-5f;
        norm.out = out;  // as the engine launches it: block 0 also stores h and its quantized form
        norm.xq = xq;
        (void)gpu::LaunchMatVecGroupNormIn(ch.type, dim, norm, ps, static_cast<int>(ch.parts.size()), nullptr, s);
      };
      for (int on = 0; on < 2; ++on) {
        gpu::MatVecConfig c;
        c.stream = on;
        gpu::SetMatVecConfig(c);
        gpu::LaunchQuantizeActivation(ch.type, out, dim, xq, s);
        const double both = bench::MedianMs(s, chain, 50, 5, 10), alone = bench::MedianMs(s, matvec, 50, 5, 10);
        const double plain = bench::MedianMs(s, plain_chain, 50, 5, 10);
        // The norm-in-every-block launch (8 warps a block) with at most 2 (its
        // default), 3 and 1 blocks an SM.
        std::string fused = "-";
        if (on) {
          fused.clear();
          for (int k = 0; k < 3; ++k) {
            gpu::MatVecConfig f = c;
            f.stream_blocks_per_sm = k == 0 ? 2 : k == 1 ? 3 : 1;
            gpu::SetMatVecConfig(f);
            char buf[32];
            std::snprintf(buf, sizeof(buf), "%s%.2f", k ? " / " : "", bench::MedianMs(s, norm_in_blocks, 50, 5, 10) * 1e3);
            fused += buf;
          }
          gpu::SetMatVecConfig(c);
        }
        CHECK_GPU(gpu::LastLaunchError());
        std::printf("| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s |\n", std::string(TypeName(ch.type)).c_str(),
                    ch.name, on ? "stream" : "portable", both * 1e3, alone * 1e3, (both - alone) * 1e3, plain * 1e3,
                    fused.c_str());
      }
      std::fflush(stdout);
      gpu::Free(yp);
      for (void* p : w) gpu::Free(p);
    }
    for (float* p : {xr, res, nw, out}) gpu::Free(p);
  }
  gpu::SetMatVecConfig(saved);
  gpu::SetPdl(saved_pdl);
  gpu::Free(x);
  gpu::Free(xq);
}

int main(int argc, char** argv) {
  auto be = GpuBackend::Create(0);
  if (!be.ok()) {
    std::fprintf(stderr, "no GPU: %s\n", std::string(be.status().message()).c_str());
    return 1;
  }
  gpu::Stream s = (*be)->stream();
  std::printf("device: %s (%s)\n\n", (*be)->device_name().c_str(), gpu::RuntimeName());
  // `bench_gpu_kernels sync_probe`: what a device-side barrier and a kernel
  // boundary cost (kernels/sync_probe.h), us a step.
  if (argc > 1 && std::string(argv[1]) == "sync_probe") {
    const int sms = gpu::MultiprocessorCount();
    std::printf("| blocks of 256 | grid.sync | counter barrier | empty kernel, PDL, graph | empty kernel, graph |"
                " ~2 us blocks, PDL, graph | the same, every other kernel with 48 KB shared |\n"
                "|---|---|---|---|---|---|---|\n");
    for (int blocks : {1, sms, 2 * sms, 4 * sms, 8 * sms}) {
      std::printf("| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", blocks,
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kGridSync, blocks, 2000, s),
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kCounterBarrier, blocks, 2000, s),
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kPdlEmptyKernels, blocks, 500, s),
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kEmptyKernels, blocks, 500, s),
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kPdlBusyKernels, blocks, 500, s),
                  gpu::MeasureSyncCost(gpu::SyncProbeKind::kPdlBusyKernelsSmemAlternate, blocks, 500, s));
    }
    // Neighbours under different L1 / shared-memory splits (MeasureSplitChain):
    // 16 = 256 threads + 1 KB, 196 = 256 threads + 96 KB, 32 = 64 threads.
    std::printf("\n| blocks | 16 / 16 | 16 / 196 | 196 / 196 | 16 / 32 | 32 / 32 |\n|---|---|---|---|---|---|\n");
    for (int blocks : {64, sms, 2 * sms}) {
      std::printf("| %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", blocks, gpu::MeasureSplitChain(0, 0, blocks, 500, s),
                  gpu::MeasureSplitChain(0, 1, blocks, 500, s), gpu::MeasureSplitChain(1, 1, blocks, 500, s),
                  gpu::MeasureSplitChain(0, 2, blocks, 500, s), gpu::MeasureSplitChain(2, 2, blocks, 500, s));
    }
    return 0;
  }
  // `bench_gpu_kernels matvec_stream [sweep]`: the bulk-copy batch-1 matvec.
  if (argc > 1 && std::string(argv[1]) == "matvec_stream") {
    RunMatVecStreamBench(s, argc > 2 && std::string(argv[2]) == "sweep");
    return 0;
  }
  // `bench_gpu_kernels sampler`: the sampler on wide (near-flat) rows alone.
  if (argc > 1 && std::string(argv[1]) == "sampler") {
    RunWideSamplerBench(be->get(), s);
    return 0;
  }
  // `bench_gpu_kernels attention`: batched decode attention, SIMT vs matrix cores.
  if (argc > 1 && std::string(argv[1]) == "attention") {
    RunAttentionBench(s);
    return 0;
  }
  if (argc == 5 && std::string(argv[1]) == "attention1") {
    const int seqs = std::atoi(argv[2]), ctx = std::atoi(argv[3]);
    if (seqs <= 0 || seqs > 64 || ctx <= 0 || ctx > 2048) return 2;
    RunAttentionBench(s, seqs, ctx, std::atoi(argv[4]));
    return 0;
  }
  // `bench_gpu_kernels gemm`: the GEMM table alone.
  if (argc > 1 && std::string(argv[1]) == "gemm") {
    RunGemmBench(s, argc > 2 && std::string(argv[2]) == "sweep");
    return 0;
  }
  // `bench_gpu_kernels gemm_group` / `crossover`: grouped vs separate batched
  // GEMMs; dense path vs in-loop GEMM per shape at n = 64..512.
  if (argc > 1 && std::string(argv[1]) == "gemm_group") {
    RunGroupBench(s);
    return 0;
  }
  // `bench_gpu_kernels mma_rate`: what mma.sync completes at best (int8 and
  // f16 products, no memory traffic), the ceiling of the MMQ / matrix-core GEMMs.
  if (argc > 1 && std::string(argv[1]) == "mma_rate") {
    for (int rep = 0; rep < 3; ++rep) {
      std::printf("matrix-core rate, rep %d: mma.sync int8 m16n8k32 %.0f TOPS, mma.sync f16 m16n8k16 (f32 accumulate) "
                  "%.0f TFLOP/s, wgmma int8 m64n128k32 (A in registers) %.0f TOPS (0 = not in this build)\n",
                  rep, gpu::MeasureMmaRate(gpu::MmaRateKind::kInt8M16N8K32, 20000, s),
                  gpu::MeasureMmaRate(gpu::MmaRateKind::kF16M16N8K16, 20000, s),
                  gpu::MeasureMmaRate(gpu::MmaRateKind::kInt8WgmmaM64N128K32, 5000, s));
    }
    CHECK_GPU(gpu::LastLaunchError());
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "mmq") {
    std::vector<int> ns = {16, 32, 64, 96, 128};
    if (argc > 2) {
      ns.clear();
      for (const char* p = argv[2]; *p != '\0';) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1 || v > 128) return 2;
        ns.push_back(static_cast<int>(v));
        p = *end == ',' ? end + 1 : end;
      }
    }
    RunMmqBench(s, ns);
    return 0;
  }
  // `bench_gpu_kernels mmq1 TYPE ROWS[+ROWS..] K N [TILE]`: 20 launches of one
  // MMQ group (forced, auto or TILE token tile, auto splits) on
  // quantized random activations, for a profiler.
  if ((argc == 6 || argc == 7) && std::string(argv[1]) == "mmq1") {
    GgmlType type = GgmlType::Q4_K;
    if (!ParseTypeName(argv[2], &type)) return 2;
    std::vector<int64_t> rows;
    for (const char* p = argv[3]; *p != '\0';) {
      char* end = nullptr;
      rows.push_back(std::strtoll(p, &end, 10));
      p = *end == '+' ? end + 1 : end;
      if (rows.back() <= 0 || rows.size() > size_t{gpu::kMaxMatVecParts}) return 2;
    }
    const int64_t k = std::atoll(argv[4]);
    const int n = std::atoi(argv[5]);
    gpu::MatVecPart parts[gpu::kMaxMatVecParts];
    for (size_t i = 0; i < rows.size(); ++i) {
      float* y = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&y), size_t(n) * rows[i] * sizeof(float)));
      parts[i] = gpu::MatVecPart{MakeWeights(type, rows[i], k, 1, s)[0], y, rows[i]};
    }
    float* x = nullptr;
    void* xq = nullptr;
    CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&x), size_t(n) * k * sizeof(float)));
    CHECK_GPU(gpu::Malloc(&xq, gpu::MatMulMmqScratchBytes(k, n)));
    std::vector<float> hx(size_t(n) * k);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : hx) v = nd(rng);
    CHECK_GPU(gpu::CopyToDevice(x, hx.data(), hx.size() * sizeof(float), s));
    gpu::LaunchQuantizeActivation(type, x, int64_t(n) * k, xq, s);
    gpu::SetGemmConfig(gpu::GemmConfig{argc == 7 ? std::atoi(argv[6]) : 0, 0, 3, 0});
    for (int i = 0; i < 20; ++i) {
      gpu::LaunchMatMulMmqGroup(type, k, xq, n, parts, static_cast<int>(rows.size()), s);
    }
    CHECK_GPU(gpu::LastLaunchError());
    CHECK_GPU(gpu::StreamSync(s));
    std::printf("mmq1 %s %s x %lld n=%d done\n", argv[2], argv[3], static_cast<long long>(k), n);
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "crossover") {
    RunCrossoverBench(s);
    return 0;
  }
  // `bench_gpu_kernels dense`: the dense prefill path table alone.
  if (argc > 1 && std::string(argv[1]) == "dense") {
    RunDenseBench(s);
    RunDenseWgmmaBench(s);
    return 0;
  }
  // `bench_gpu_kernels dense_wgmma`: the f16 GEMM, mma.sync vs wgmma, alone.
  if (argc > 1 && std::string(argv[1]) == "dense_wgmma") {
    RunDenseWgmmaBench(s);
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

  // `bench_gpu_kernels matvec`: the copy bandwidth and the two matvec tables only.
  const bool matvec_only = argc > 1 && std::string(argv[1]) == "matvec";
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
  std::printf("| type | weight MiB | us / matvec (incl. activation quantization) | TB/s (weight bytes / time) | TB/s, matvec kernel alone | ggml anchor TB/s | TB/s, alone, PDL on |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
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
              T{GgmlType::Q6_K, 1.61}, T{GgmlType::Q3_K, 0.87}, T{GgmlType::Q2_K, 1.13}}) {
    const size_t bytes = RowBytes(t.type, k) * m;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
    std::vector<void*> w = MakeWeights(t.type, m, k, copies, s);
    const double ms = bench::MedianMs(s, [&](int i) {
      gpu::LaunchMatMulSmallBatch(t.type, w[i % copies], m, k, x, y, 1, scratch, s);
    }, 100, 7, 20);
    CHECK_GPU(gpu::LastLaunchError());
    // The matvec alone, activations quantized beforehand (the float types have
    // no such step), launched the ordinary way (PDL off: no launch overlaps the
    // one before it) and, in the last column, with PDL (gpu::SetPdl), where each
    // launch's weight prefetch and start overlap the previous launch's tail.
    auto alone_ms = [&](bool pdl) {
      const bool saved_pdl = gpu::GetPdl();
      gpu::SetPdl(pdl);
      double r = 0.0;
      if (gpu::ActivationRule(t.type) != 0) {
        gpu::LaunchQuantizeActivation(t.type, x, k, scratch, s);
        r = bench::MedianMs(s, [&](int i) {
          gpu::LaunchMatMulSmallBatchQuantized(t.type, w[i % copies], m, k, scratch, y, 1, s);
        }, 100, 7, 20);
      } else {
        r = bench::MedianMs(s, [&](int i) {
          gpu::LaunchMatMulSmallBatch(t.type, w[i % copies], m, k, x, y, 1, scratch, s);
        }, 100, 7, 20);
      }
      gpu::SetPdl(saved_pdl);
      return r;
    };
    const double ms_only = alone_ms(false), ms_pdl = alone_ms(true);
    std::printf("| %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |\n", std::string(TypeName(t.type)).c_str(),
                bytes / 1048576.0, ms * 1e3, bytes / (ms * 1e-3) / 1e12,
                bytes / (ms_only * 1e-3) / 1e12, t.anchor, bytes / (ms_pdl * 1e-3) / 1e12);
    std::fflush(stdout);
    if (!matvec_only && (t.type == GgmlType::Q4_K || t.type == GgmlType::F16 || t.type == GgmlType::Q8_0)) {
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
  // Llama-3-8B, activations quantized beforehand, kernel alone with PDL off and
  // on: 4096x4096 (attention output), 14336x4096 (gate / up alone), 4096x14336
  // (down) and, for the quantized types, the two groups a decode step launches
  // as one kernel (LaunchMatVecQuantizedGroup): Q+K+V (4096 + 1024 + 1024 rows)
  // and gate+up (2 x 14336 rows). Config: threads per row (-2: v6 auto, -1: v5
  // auto, 0: auto), pairs, rows per thread (0: auto), then loads per thread
  // (float types) or Q4_0 runs (1 on, -1 off; 0 auto).
  std::printf("\n| type | m x k | config (threads/row, pairs, rows/thread, loads or runs) | us | TB/s | TB/s PDL on |\n"
              "|---|---|---|---|---|---|\n");
  const gpu::MatVecConfig saved = gpu::GetMatVecConfig();
  const bool saved_pdl = gpu::GetPdl();
  // RF_SWEEP_TYPES="Q2_K,Q3_K" limits the sweep to those types (it takes
  // minutes for all).
  std::vector<GgmlType> sweep_types = {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K,
                                       GgmlType::Q8_0, GgmlType::Q5_K, GgmlType::F32, GgmlType::BF16,
                                       GgmlType::Q3_K, GgmlType::Q2_K};
  if (const char* only = std::getenv("RF_SWEEP_TYPES"); only != nullptr && *only != '\0') {
    std::vector<GgmlType> picked;
    std::string list = only;
    for (size_t a = 0; a <= list.size();) {
      const size_t b = std::min(list.find(',', a), list.size());
      GgmlType t;
      if (ParseTypeName(list.substr(a, b - a).c_str(), &t)) picked.push_back(t);
      a = b + 1;
    }
    sweep_types = picked;
  }
  for (GgmlType type : sweep_types) {
    struct Shape {
      int64_t m, k;
      int parts;  // 1: one weight; 3: Q+K+V (m, m/4, m/4); 2: gate+up (m, m)
    };
    const bool quantized = gpu::ActivationRule(type) != 0;
    const bool is_float = !quantized;
    std::vector<Shape> shapes = {{4096, 4096, 1}, {14336, 4096, 1}, {4096, 14336, 1}};
    if (quantized) {
      shapes.push_back({4096, 4096, 3});
      shapes.push_back({14336, 4096, 2});
    }
    for (Shape sh : shapes) {
      std::vector<int64_t> part_rows = {sh.m};
      if (sh.parts == 3) part_rows = {sh.m, sh.m / 4, sh.m / 4};
      if (sh.parts == 2) part_rows = {sh.m, sh.m};
      int64_t total_rows = 0;
      for (int64_t r : part_rows) total_rows += r;
      const size_t row_bytes = RowBytes(type, sh.k);
      const size_t bytes = row_bytes * total_rows;
      const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
      std::vector<void*> w = MakeWeights(type, total_rows, sh.k, copies, s);
      float* yp = nullptr;
      CHECK_GPU(gpu::Malloc(reinterpret_cast<void**>(&yp), total_rows * sizeof(float)));
      if (quantized) gpu::LaunchQuantizeActivation(type, x, sh.k, scratch, s);
      auto launch = [&](int i) {
        const uint8_t* base = static_cast<const uint8_t*>(w[i % copies]);
        if (sh.parts == 1) {
          if (quantized) {
            gpu::LaunchMatMulSmallBatchQuantized(type, base, sh.m, sh.k, scratch, yp, 1, s);
          } else {
            gpu::LaunchMatMulSmallBatch(type, base, sh.m, sh.k, x, yp, 1, scratch, s);
          }
          return;
        }
        gpu::MatVecPart ps[gpu::kMaxMatVecParts];
        int64_t r0 = 0;
        for (size_t p = 0; p < part_rows.size(); ++p) {
          ps[p] = gpu::MatVecPart{base + r0 * row_bytes, yp + r0, part_rows[p]};
          r0 += part_rows[p];
        }
        gpu::LaunchMatVecQuantizedGroup(type, sh.k, scratch, ps, static_cast<int>(part_rows.size()), s);
      };
      struct Cfg {
        int tpr, pairs, rpt, extra;
        int pf = -1;  // L2 prefetch bytes per row under PDL (-1 auto)
      };
      std::vector<Cfg> cfgs;
      const bool k4 = type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K ||
                      type == GgmlType::Q2_K || type == GgmlType::Q3_K;  // pairs / quads on and off
      for (int tpr : {-2, -1, 0}) cfgs.push_back({tpr, 1, 0, 0});
      if (k4) cfgs.push_back({0, 0, 0, 0});
      // The automatic shape with other L2 prefetch amounts (only the PDL column differs).
      for (int pf : {0, 512, 1024, 4096}) cfgs.push_back({0, 1, 0, 0, pf});
      for (int tpr : {32, 64, 128, 256}) {
        for (int pairs = k4 ? 0 : 1; pairs <= 1; ++pairs) {
          for (int rpt : {1, 2, 4}) {
            if (is_float) {
              for (int loads : {1, 2, 4}) cfgs.push_back({tpr, pairs, rpt, loads});
            } else if (type == GgmlType::Q4_0) {
              cfgs.push_back({tpr, pairs, rpt, -1});
              if (rpt <= 2 && sh.k % 256 == 0) cfgs.push_back({tpr, pairs, rpt, 1});
            } else {
              cfgs.push_back({tpr, pairs, rpt, 0});
            }
          }
        }
      }
      for (const Cfg& c : cfgs) {
        gpu::MatVecConfig cfg;
        cfg.threads_per_row = c.tpr;
        cfg.pairs = c.pairs == 1;
        cfg.rows_per_thread = c.rpt;
        if (is_float) cfg.loads_per_thread = c.extra;
        if (type == GgmlType::Q4_0) cfg.q4_0_runs = c.extra;
        cfg.prefetch_bytes = c.pf;
        gpu::SetMatVecConfig(cfg);
        double ms[2];
        for (int pdl = 0; pdl < 2; ++pdl) {
          gpu::SetPdl(pdl == 1);
          ms[pdl] = bench::MedianMs(s, launch, 100, 7, 20);
          CHECK_GPU(gpu::LastLaunchError());
        }
        const char* group = sh.parts == 3 ? "QKV " : sh.parts == 2 ? "gate+up " : "";
        std::printf("| %s | %s%lldx%lld | %d, %d, %d, %d%s%s | %.2f | %.2f | %.2f |\n",
                    std::string(TypeName(type)).c_str(), group, static_cast<long long>(total_rows),
                    static_cast<long long>(sh.k), c.tpr, c.pairs, c.rpt, c.extra, c.pf >= 0 ? ", prefetch " : "",
                    c.pf >= 0 ? std::to_string(c.pf).c_str() : "", ms[0] * 1e3,
                    bytes / (ms[0] * 1e-3) / 1e12, bytes / (ms[1] * 1e-3) / 1e12);
      }
      std::fflush(stdout);
      gpu::Free(yp);
      for (void* p : w) gpu::Free(p);
    }
  }
  gpu::SetMatVecConfig(saved);
  gpu::SetPdl(saved_pdl);
  gpu::Free(x);
  gpu::Free(y);
  gpu::Free(scratch);
  if (matvec_only) return 0;

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
  RunWideSamplerBench(be->get(), s);
  return 0;
}
