// Probe (bench only, NVIDIA only, never built by CI): how fast can a batched-decode
// GEMM go when the 4-bit weights are repacked offline into the exact mma.sync
// m16n8k16 A-fragment order (Marlin style)? Nothing in kernels/ or engine/ uses it.
//
// Weight format (a stand-in for Q4_K): per row, groups of 32 values with one f16
// scale and one f16 min, value = q * scale - min, q in 0..15: 0.625 bytes a weight
// (Q4_K: 0.5625). Packed per 16-row tile and 64-wide k chunk:
//  * 32 lanes x 16 bytes of nibbles: lane l (g = l / 4, qd = l % 4) holds word t
//    (k step t of the chunk) whose nibbles p and p + 4 are the pair (k, k + 1) of
//    its A register p: row g + 8 (p % 2), k = 16 t + 2 qd + 8 (p / 2). So
//    ((word >> 4p) & 0x000F000F) | 0x64006400 is half2(1024 + q_k, 1024 + q_k+1).
//  * 8 x 16 bytes of scales, one per g: s(g, G0) s(g+8, G0) s(g, G1) s(g+8, G1) and
//    the same four of -min (G0, G1: the two groups of 32 in the chunk).
// Activations are packed by the host in B-fragment order (in production the kernel
// before the GEMM would write them so): per 16-k step and 16 tokens, 32 lanes x 16 B.
//
// Kernel: block = 8 warps, 128 weight rows; warps split as WR row groups (MT tiles of
// 16 rows each) x WK k groups. Each block-chunk (WK x 64 k) of activations goes to
// shared memory with cp.async (kStages deep); weights go straight from global into
// registers kStages chunks ahead, are decoded with the magic-number trick (lop3,
// exact hsub2 of 1024, hfma2 with scale and -min) and fed to mma.sync. K warps reduce
// through shared memory; K splits across blocks (grid.y) write f32 partials and the
// last block of a row block (one counter atomic) sums them in split order.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu/probe_cuda_check.h"
#include "kernels/gpu_runtime.h"

namespace rocmforge::probe {
namespace {

namespace mma = gpu::mma;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kBlockRows = 128;
constexpr int kChunk = 64;  // k per chunk: one 16-byte weight load per lane and 16-row tile
// A tiling: N tokens; MT 16-row tiles per warp; WK warps splitting each block-chunk's
// k (8 / WK row groups, 16 MT (8 / WK) = 128 rows a block); ST pipeline depth (register
// ring of weights and shared-memory stages of activations); MINB blocks per SM asked of
// the compiler (2 caps registers at 128).
template <int N_, int MT_, int WK_, int ST_, int MINB_>
struct Cfg {
  static constexpr int N = N_, MT = MT_, WK = WK_, WR = kWarps / WK_, ST = ST_, MINB = MINB_, NJ = N_ / 16;
  static_assert(16 * MT * WR == kBlockRows, "a block is 128 rows");
  static constexpr int kStageU4 = WK * 4 * NJ * 32;  // uint4 of activations per stage
  static constexpr int kXBytes = ST * kStageU4 * 16;
  static constexpr int kRedBytes = WR * MT * NJ * 8 * 32 * 4;
  static constexpr int kSmem = kXBytes > kRedBytes ? kXBytes : kRedBytes;
};

__device__ __forceinline__ uint32_t AsU32(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 AsH2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

__device__ __forceinline__ uint4 LoadStream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ uint32_t Lop3Nibbles(uint32_t w) {
  uint32_t r;  // (w & 0x000F000F) | 0x64006400
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(r) : "r"(w), "n"(0x000F000F), "n"(0x64006400));
  return r;
}

template <int N, int MT>
__device__ __forceinline__ void ComputeChunk(mma::FragC (&acc)[MT][N / 16], const uint4 (&w)[MT],
                                             const uint4 (&s)[MT], const uint4* xs, int lane) {
  constexpr int NJ = N / 16;
  const __half2 k1024 = AsH2(0x64006400u);
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    mma::FragB b[NJ];
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const uint4 v = xs[(t * NJ + j) * 32 + lane];
      b[j].x[0] = v.x;
      b[j].x[1] = v.y;
      b[j].x[2] = v.z;
      b[j].x[3] = v.w;
    }
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const uint32_t word = t == 0 ? w[i].x : t == 1 ? w[i].y : t == 2 ? w[i].z : w[i].w;
      const uint32_t sw = t < 2 ? s[i].x : s[i].y;
      const uint32_t bw = t < 2 ? s[i].z : s[i].w;
      const __half2 sc[2] = {AsH2(__byte_perm(sw, 0, 0x1010)), AsH2(__byte_perm(sw, 0, 0x3232))};
      const __half2 bi[2] = {AsH2(__byte_perm(bw, 0, 0x1010)), AsH2(__byte_perm(bw, 0, 0x3232))};
      mma::FragA a;
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        const __half2 q = __hsub2(AsH2(Lop3Nibbles(word >> (4 * p))), k1024);
        a.x[p] = AsU32(__hfma2(q, sc[p % 2], bi[p % 2]));
      }
#pragma unroll
      for (int j = 0; j < NJ; ++j) mma::Mma(acc[i][j], a, b[j]);
    }
  }
}

// y[n][row] = sum_k W[row][k] x[n][k]. wq / sc: packed weights / scales of
// ceil(rows / 128) * 8 tiles; xp: packed activations; partial: splits x N x rows f32;
// counters: one per row block, zero before and after each launch.
template <class C>
__global__ void __launch_bounds__(kThreads, C::MINB)
    RepackedGemm(const uint4* __restrict__ wq, const uint4* __restrict__ sc,
                 const uint4* __restrict__ xp, float* __restrict__ y, float* __restrict__ partial,
                 unsigned* __restrict__ counters, int rows, int chunks, int chunks_per_split) {
  constexpr int N = C::N, MT = C::MT, WK = C::WK, WR = C::WR, NJ = C::NJ;
  constexpr int kStage = C::kStageU4, kStages = C::ST;
  extern __shared__ uint4 smem[];
  __shared__ unsigned is_last;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, wr = warp % WR, wk = warp / WR;
  const int split = blockIdx.y, splits = gridDim.y;
  const int c0 = split * chunks_per_split, c1 = min(chunks, c0 + chunks_per_split);
  const int nb = (c1 - c0 + WK - 1) / WK;
  const int tile0 = blockIdx.x * (kBlockRows / 16) + wr * MT;

  const uint4* wp[MT];
  const uint4* sp[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
    wp[i] = wq + static_cast<size_t>(tile0 + i) * chunks * 32 + lane;
    sp[i] = sc + static_cast<size_t>(tile0 + i) * chunks * 8 + lane / 4;
  }
  auto load_x = [&](int b) {
    if (b < nb) {
      uint4* dst = smem + (b % kStages) * kStage;
      const int cfirst = c0 + b * WK;
      const int n_u4 = min(WK, c1 - cfirst) * 4 * NJ * 32;
      const uint4* src = xp + static_cast<size_t>(cfirst) * 4 * NJ * 32;
      for (int u = threadIdx.x; u < n_u4; u += kThreads) gpu::AsyncCopy16(dst + u, src + u);
    }
    gpu::AsyncCommit();
  };

  mma::FragC acc[MT][NJ];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NJ; ++j) mma::Zero(acc[i][j]);

  uint4 wv[kStages][MT], sv[kStages][MT];
#pragma unroll
  for (int s = 0; s < kStages; ++s) {
    const int c = c0 + s * WK + wk;
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      if (c < c1) {
        wv[s][i] = LoadStream(wp[i] + static_cast<size_t>(c) * 32);
        sv[s][i] = __ldg(sp[i] + static_cast<size_t>(c) * 8);
      } else {
        wv[s][i] = make_uint4(0, 0, 0, 0);
        sv[s][i] = make_uint4(0, 0, 0, 0);
      }
    }
  }
  for (int s = 0; s < kStages - 1; ++s) load_x(s);

  for (int b0 = 0; b0 < nb; b0 += kStages) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      const int b = b0 + s;
      if (b < nb) {  // uniform over the block
        gpu::AsyncWait<kStages - 2>();
        __syncthreads();
        load_x(b + kStages - 1);
        const int c = c0 + b * WK + wk;
        if (c < c1) {
          ComputeChunk<N, MT>(acc, wv[s], sv[s], smem + s * kStage + wk * 4 * NJ * 32, lane);
          const int cn = c + kStages * WK;
          if (cn < c1) {
#pragma unroll
            for (int i = 0; i < MT; ++i) {
              wv[s][i] = LoadStream(wp[i] + static_cast<size_t>(cn) * 32);
              sv[s][i] = __ldg(sp[i] + static_cast<size_t>(cn) * 8);
            }
          }
        }
      }
    }
  }

  // K warps: warps wk > 0 hand their sums to warp wk = 0 of the same row group.
  if constexpr (WK > 1) {
    gpu::AsyncWaitAll();
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    constexpr int kAcc = MT * NJ * 8;
    for (int kw = 1; kw < WK; ++kw) {
      if (wk == kw) {
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < NJ; ++j)
#pragma unroll
            for (int e = 0; e < 8; ++e) red[(wr * kAcc + (i * NJ + j) * 8 + e) * 32 + lane] = acc[i][j].x[e];
      }
      __syncthreads();
      if (wk == 0) {
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int j = 0; j < NJ; ++j)
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[i][j].x[e] += red[(wr * kAcc + (i * NJ + j) * 8 + e) * 32 + lane];
      }
      __syncthreads();
    }
  }

  float* out = splits == 1 ? y : partial + static_cast<size_t>(split) * N * rows;
  if (wk == 0) {
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const int row0 = (tile0 + i) * 16;
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        mma::ForEachAcc(acc[i][j], [&](int r, int col, float v) {
          const int row = row0 + r;
          if (row < rows) out[static_cast<size_t>(16 * j + col) * rows + row] = v;
        });
      }
    }
  }
  if (splits == 1) return;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(&counters[blockIdx.x], 1u) == static_cast<unsigned>(splits - 1);
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const int first_row = blockIdx.x * kBlockRows;
  const int rows_here = min(kBlockRows, rows - first_row);
  for (int e = threadIdx.x; e < N * kBlockRows; e += kThreads) {
    const int n = e / kBlockRows, r = e % kBlockRows;
    if (r >= rows_here) continue;
    const size_t at = static_cast<size_t>(n) * rows + first_row + r;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += __ldcg(partial + static_cast<size_t>(s) * N * rows + at);
    y[at] = sum;
  }
  if (threadIdx.x == 0) counters[blockIdx.x] = 0;
}

// ------------------------------------------------------------------ host

uint16_t HalfBits(float f) { return static_cast<__half_raw>(__float2half(f)).x; }
float HalfValue(uint16_t u) {
  __half_raw r;
  r.x = u;
  return __half2float(__half(r));
}

struct HostWeights {
  int rows = 0, cols = 0;
  std::vector<uint8_t> q;          // rows x cols
  std::vector<uint16_t> scale, mn;  // rows x cols / 32, f16 bits
  std::vector<uint4> wq, sc;       // packed
};

HostWeights MakeWeights(int rows, int cols, std::mt19937& rng) {
  HostWeights w;
  w.rows = rows;
  w.cols = cols;
  const int groups = cols / 32;
  w.q.resize(static_cast<size_t>(rows) * cols);
  w.scale.resize(static_cast<size_t>(rows) * groups);
  w.mn.resize(w.scale.size());
  std::uniform_int_distribution<int> qd(0, 15);
  std::uniform_real_distribution<float> sd(0.004f, 0.02f), md(0.0f, 15.0f);
  for (auto& v : w.q) v = static_cast<uint8_t>(qd(rng));
  for (size_t i = 0; i < w.scale.size(); ++i) {
    const float s = sd(rng);
    w.scale[i] = HalfBits(s);
    w.mn[i] = HalfBits(s * md(rng));
  }
  const int tiles = (rows + kBlockRows - 1) / kBlockRows * (kBlockRows / 16);
  const int chunks = cols / kChunk;
  w.wq.assign(static_cast<size_t>(tiles) * chunks * 32, make_uint4(0, 0, 0, 0));
  w.sc.assign(static_cast<size_t>(tiles) * chunks * 8, make_uint4(0, 0, 0, 0));
  auto qat = [&](int r, int k) -> uint32_t { return r < rows ? w.q[static_cast<size_t>(r) * cols + k] : 0; };
  auto sat = [&](int r, int g) -> uint32_t { return r < rows ? w.scale[static_cast<size_t>(r) * groups + g] : 0; };
  auto bat = [&](int r, int g) -> uint32_t {  // -min
    return r < rows ? (w.mn[static_cast<size_t>(r) * groups + g] ^ 0x8000u) : 0;
  };
  for (int tile = 0; tile < tiles; ++tile) {
    for (int c = 0; c < chunks; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, qd4 = l % 4;
        uint32_t words[4];
        for (int t = 0; t < 4; ++t) {
          uint32_t word = 0;
          for (int p = 0; p < 4; ++p) {
            const int r = 16 * tile + g + 8 * (p % 2);
            const int k = kChunk * c + 16 * t + 2 * qd4 + 8 * (p / 2);
            word |= qat(r, k) << (4 * p);
            word |= qat(r, k + 1) << (16 + 4 * p);
          }
          words[t] = word;
        }
        w.wq[(static_cast<size_t>(tile) * chunks + c) * 32 + l] = make_uint4(words[0], words[1], words[2], words[3]);
      }
      for (int g = 0; g < 8; ++g) {
        const int r0 = 16 * tile + g, r1 = r0 + 8, g0 = 2 * c, g1 = 2 * c + 1;
        w.sc[(static_cast<size_t>(tile) * chunks + c) * 8 + g] =
            make_uint4(sat(r0, g0) | sat(r1, g0) << 16, sat(r0, g1) | sat(r1, g1) << 16,
                       bat(r0, g0) | bat(r1, g0) << 16, bat(r0, g1) | bat(r1, g1) << 16);
      }
    }
  }
  return w;
}

// x: n x cols (f16 bits) -> B-fragment order [k step][16-token tile][lane] uint4.
std::vector<uint4> PackX(const std::vector<uint16_t>& x, int n, int cols) {
  std::vector<uint4> out(static_cast<size_t>(cols / 16) * (n / 16) * 32);
  for (int ks = 0; ks < cols / 16; ++ks) {
    for (int j = 0; j < n / 16; ++j) {
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, qd = l % 4;
        uint32_t reg[4];
        for (int h = 0; h < 2; ++h) {
          for (int r = 0; r < 2; ++r) {
            const int tok = 16 * j + 8 * h + g, k = 16 * ks + 2 * qd + 8 * r;
            reg[2 * h + r] = x[static_cast<size_t>(tok) * cols + k] |
                             static_cast<uint32_t>(x[static_cast<size_t>(tok) * cols + k + 1]) << 16;
          }
        }
        out[(static_cast<size_t>(ks) * (n / 16) + j) * 32 + l] = make_uint4(reg[0], reg[1], reg[2], reg[3]);
      }
    }
  }
  return out;
}

struct Check {
  double rel = 0.0;
  bool finite = true;
};

// Double reference for the listed rows; relative error = max |y - ref| / max |ref|.
Check Verify(const HostWeights& w, const std::vector<uint16_t>& x, int n, const std::vector<float>& y,
             const std::vector<int>& rows) {
  const int cols = w.cols, groups = cols / 32;
  std::vector<double> xd(x.size());
  for (size_t i = 0; i < x.size(); ++i) xd[i] = HalfValue(x[i]);
  std::vector<double> wrow(cols);
  double err = 0.0, mag = 0.0;
  Check c;
  for (int r : rows) {
    for (int k = 0; k < cols; ++k) {
      const size_t gi = static_cast<size_t>(r) * groups + k / 32;
      wrow[k] = w.q[static_cast<size_t>(r) * cols + k] * static_cast<double>(HalfValue(w.scale[gi])) -
                HalfValue(w.mn[gi]);
    }
    for (int t = 0; t < n; ++t) {
      double ref = 0.0;
      const double* xt = &xd[static_cast<size_t>(t) * cols];
      for (int k = 0; k < cols; ++k) ref += wrow[k] * xt[k];
      const float got = y[static_cast<size_t>(t) * w.rows + r];
      if (!std::isfinite(got)) c.finite = false;
      err = std::max(err, std::fabs(got - ref));
      mag = std::max(mag, std::fabs(ref));
    }
  }
  c.rel = mag > 0 ? err / mag : err;
  if (!c.finite) c.rel = INFINITY;
  return c;
}

struct Launch {
  int splits = 1, chunks_per_split = 1, row_blocks = 1;
};

// K splits: about split_mul / split_div resident waves of blocks (slots = sms x blocks per SM).
Launch PlanFor(int rows, int cols, int slots, int split_mul, int split_div, int k_warps) {
  Launch l;
  l.row_blocks = (rows + kBlockRows - 1) / kBlockRows;
  const int chunks = cols / kChunk;
  const int s = std::max(1, (slots * split_mul + l.row_blocks / 2) / l.row_blocks / split_div);
  int cps = (chunks + s - 1) / s;
  cps = (cps + k_warps - 1) / k_warps * k_warps;
  l.chunks_per_split = cps;
  l.splits = (chunks + cps - 1) / cps;
  return l;
}
template <class C>
Launch Plan(int rows, int cols, int sms, int split_mul, int split_div) {
  int occ = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, RepackedGemm<C>, kThreads, C::kSmem));
  return PlanFor(rows, cols, sms * std::max(occ, 1), split_mul, split_div, C::WK);
}

template <class C>
void Run(const uint4* wq, const uint4* sc, const uint4* xp, float* y, float* partial, unsigned* counters,
         int rows, int cols, const Launch& l, cudaStream_t st) {
  RepackedGemm<C><<<dim3(l.row_blocks, l.splits), kThreads, C::kSmem, st>>>(
      wq, sc, xp, y, partial, counters, rows, cols / kChunk, l.chunks_per_split);
}

int g_failures = 0;

template <class C>
std::string Label() {
  char b[32];
  std::snprintf(b, sizeof(b), "mt%d wk%d st%d", C::MT, C::WK, C::ST);
  return b;
}
template <class C>
void PrintKernel() {
  CHECK(cudaFuncSetAttribute(RepackedGemm<C>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem));
  cudaFuncAttributes fa;
  CHECK(cudaFuncGetAttributes(&fa, RepackedGemm<C>));
  int occ = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, RepackedGemm<C>, kThreads, C::kSmem));
  std::printf("kernel n=%3d %s: %d regs, %d B local, %d B shared, %d blocks/SM\n", C::N, Label<C>().c_str(),
              fa.numRegs, static_cast<int>(fa.localSizeBytes), C::kSmem, occ);
}
template <class C>
struct Tag {
  using type = C;
};

// One weight shape and token count: every tiling in Cs, each at up to three K-split counts.
template <int N, class... Cs>
void Shape(int rows, int cols, bool timed, int sms, cudaStream_t st, std::mt19937& rng) {
  const HostWeights w = MakeWeights(rows, cols, rng);
  std::vector<uint16_t> x(static_cast<size_t>(N) * cols);
  std::uniform_real_distribution<float> xd(-1.0f, 1.0f);
  for (auto& v : x) v = HalfBits(xd(rng));
  const std::vector<uint4> xp = PackX(x, N, cols);

  const size_t wq_bytes = w.wq.size() * 16, sc_bytes = w.sc.size() * 16;
  const size_t copy_bytes = wq_bytes + sc_bytes;
  const int copies = timed ? static_cast<int>((300ull << 20) / copy_bytes + 1) : 1;
  uint8_t* wbuf = nullptr;
  CHECK(cudaMalloc(&wbuf, copy_bytes * copies));
  CHECK(cudaMemcpy(wbuf, w.wq.data(), wq_bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(wbuf + wq_bytes, w.sc.data(), sc_bytes, cudaMemcpyHostToDevice));
  for (int c = 1; c < copies; ++c) CHECK(cudaMemcpy(wbuf + c * copy_bytes, wbuf, copy_bytes, cudaMemcpyDeviceToDevice));
  uint4* xbuf = nullptr;
  float *y = nullptr, *partial = nullptr;
  unsigned* counters = nullptr;
  const int max_splits = cols / kChunk;
  CHECK(cudaMalloc(&xbuf, xp.size() * 16));
  CHECK(cudaMemcpy(xbuf, xp.data(), xp.size() * 16, cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&y, sizeof(float) * N * rows));
  CHECK(cudaMalloc(&partial, sizeof(float) * N * rows * max_splits));
  CHECK(cudaMalloc(&counters, sizeof(unsigned) * 4096));
  CHECK(cudaMemset(counters, 0, sizeof(unsigned) * 4096));

  auto wq_of = [&](int c) { return reinterpret_cast<const uint4*>(wbuf + c * copy_bytes); };
  auto sc_of = [&](int c) { return reinterpret_cast<const uint4*>(wbuf + c * copy_bytes + wq_bytes); };

  // Sampled rows (all rows for the untimed awkward shapes), the last row included.
  std::vector<int> check_rows;
  if (!timed) {
    for (int r = 0; r < rows; ++r) check_rows.push_back(r);
  } else {
    std::uniform_int_distribution<int> rd(0, rows - 1);
    for (int i = 0; i < 48; ++i) check_rows.push_back(rd(rng));
    check_rows.push_back(rows - 1);
    check_rows.push_back(0);
  }
  const double weight_bytes = static_cast<double>(rows) * cols * 0.625;
  auto measure = [&](auto tag) {
    using C = typename decltype(tag)::type;
    CHECK(cudaFuncSetAttribute(RepackedGemm<C>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem));
  const int variants[3][2] = {{1, 1}, {2, 1}, {1, 2}};  // waves of K-split blocks: 1, 2, 1/2
  std::vector<int> seen_splits;
  for (const auto& v : variants) {
    const Launch l = Plan<C>(rows, cols, sms, v[0], v[1]);
    if (std::find(seen_splits.begin(), seen_splits.end(), l.splits) != seen_splits.end()) continue;
    seen_splits.push_back(l.splits);
    CHECK(cudaMemset(y, 0xFF, sizeof(float) * N * rows));  // NaN
    CHECK(cudaMemset(partial, 0xFF, sizeof(float) * N * rows * max_splits));
    Run<C>(wq_of(copies - 1), sc_of(copies - 1), xbuf, y, partial, counters, rows, cols, l, st);
    CHECK(cudaStreamSynchronize(st));
    CHECK(cudaGetLastError());
    std::vector<float> yh(static_cast<size_t>(N) * rows);
    CHECK(cudaMemcpy(yh.data(), y, yh.size() * 4, cudaMemcpyDeviceToHost));
    const Check c = Verify(w, x, N, yh, check_rows);
    const bool ok = c.finite && c.rel <= 1e-2;
    if (!ok) ++g_failures;
    double us = 0.0;
    if (timed) {
      const int iters = copies * ((20 + copies - 1) / copies);
      for (int i = 0; i < 2 * copies; ++i) Run<C>(wq_of(i % copies), sc_of(i % copies), xbuf, y, partial, counters, rows, cols, l, st);
      cudaEvent_t a, b;
      CHECK(cudaEventCreate(&a));
      CHECK(cudaEventCreate(&b));
      std::vector<double> t;
      for (int rep = 0; rep < 21; ++rep) {
        CHECK(cudaEventRecord(a, st));
        for (int i = 0; i < iters; ++i) Run<C>(wq_of(i % copies), sc_of(i % copies), xbuf, y, partial, counters, rows, cols, l, st);
        CHECK(cudaEventRecord(b, st));
        CHECK(cudaEventSynchronize(b));
        float ms = 0.0f;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(1000.0 * ms / iters);
      }
      CHECK(cudaGetLastError());
      std::sort(t.begin(), t.end());
      us = t[t.size() / 2];
      CHECK(cudaEventDestroy(a));
      CHECK(cudaEventDestroy(b));
      // The timed launches must still give the right answer (counters reset, etc.).
      std::vector<float> y2(yh.size());
      CHECK(cudaMemcpy(y2.data(), y, y2.size() * 4, cudaMemcpyDeviceToHost));
      const Check c2 = Verify(w, x, N, y2, check_rows);
      if (!(c2.finite && c2.rel <= 1e-2)) {
        ++g_failures;
        std::printf("  after timing: rel err %.2e FAIL\n", c2.rel);
      }
    }
    if (timed) {
      std::printf("%5dx%-5d n=%3d  %s  grid %3dx%-2d  %8.1f us  %5.2f TB/s  %6.1f TFLOP/s  rel err %.1e %s\n", rows, cols,
                  N, Label<C>().c_str(), l.row_blocks, l.splits, us, weight_bytes / us * 1e-6, 2.0 * rows * cols * N / us * 1e-6, c.rel,
                  ok ? "ok" : "FAIL");
    } else {
      std::printf("%5dx%-5d n=%3d  %s  grid %3dx%-2d  correctness (all rows) rel err %.1e %s\n", rows, cols, N,
                  Label<C>().c_str(), l.row_blocks,
                  l.splits, c.rel, ok ? "ok" : "FAIL");
    }
    std::fflush(stdout);
  }
  };
  (measure(Tag<Cs>{}), ...);
  CHECK(cudaFree(wbuf));
  CHECK(cudaFree(xbuf));
  CHECK(cudaFree(y));
  CHECK(cudaFree(partial));
  CHECK(cudaFree(counters));
}

void CopyBandwidth(cudaStream_t st) {
  const size_t bytes = 1ull << 30;
  void *a = nullptr, *b = nullptr;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  for (int i = 0; i < 2; ++i) CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, st));
  std::vector<double> t;
  for (int r = 0; r < 9; ++r) {
    CHECK(cudaEventRecord(e0, st));
    CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, st));
    CHECK(cudaEventRecord(e1, st));
    CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  std::printf("copy bandwidth (cudaMemcpy D2D 1 GiB, read + written): %.2f TB/s\n", 2.0 * bytes / (t[4] * 1e-3) * 1e-12);
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
}

}  // namespace
}  // namespace rocmforge::probe

namespace rocmforge::probe {
namespace {
// The tilings measured (a: 2 row tiles a warp, K warps; b: 1 row tile, no K warps).
using C16a = Cfg<16, 2, 2, 4, 2>;
using C16b = Cfg<16, 1, 1, 4, 2>;
using C32a = Cfg<32, 2, 2, 3, 2>;
using C32b = Cfg<32, 1, 1, 4, 2>;
using C64a = Cfg<64, 2, 2, 4, 1>;
using C64b = Cfg<64, 1, 1, 4, 1>;
using C128a = Cfg<128, 1, 1, 4, 1>;
}  // namespace
}  // namespace rocmforge::probe

int main() {
  using namespace rocmforge::probe;
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  std::printf("weights: 4-bit, f16 scale + f16 min per 32 (0.625 B/weight, counted in TB/s); rows x cols, n tokens\n");
  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  PrintKernel<C16a>();
  PrintKernel<C16b>();
  PrintKernel<C32a>();
  PrintKernel<C32b>();
  PrintKernel<C64a>();
  PrintKernel<C64b>();
  PrintKernel<C128a>();
  std::mt19937 rng(20261126);
  const int sms = prop.multiProcessorCount;
  // Awkward row counts, every row checked.
  Shape<16, C16a, C16b>(1000, 4096, false, sms, st, rng);
  Shape<32, C32a, C32b>(1000, 4096, false, sms, st, rng);
  Shape<64, C64a, C64b>(333, 1024, false, sms, st, rng);
  Shape<128, C128a>(200, 14336, false, sms, st, rng);
  Shape<32, C32a, C32b>(4100, 4096, false, sms, st, rng);
  CopyBandwidth(st);
  const int shapes[4][2] = {{4096, 4096}, {1024, 4096}, {14336, 4096}, {4096, 14336}};
  for (const auto& s : shapes) {
    Shape<16, C16a, C16b>(s[0], s[1], true, sms, st, rng);
    Shape<32, C32a, C32b>(s[0], s[1], true, sms, st, rng);
    Shape<64, C64a, C64b>(s[0], s[1], true, sms, st, rng);
    Shape<128, C128a>(s[0], s[1], true, sms, st, rng);
  }
  std::printf("%s: %d failures\n", g_failures == 0 ? "PASS" : "FAIL", g_failures);
  return g_failures == 0 ? 0 : 1;
}
