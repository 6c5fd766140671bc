// Dense f16 GEMM for prefill (large n): y[n][rows] = x16[n][cols] . w16[rows][cols]^T
// with float accumulation, both operands plain f16 (weights dequantized once per
// call by kernels/dequantize_f16.hip, activations converted there too), written
// only through the mma:: interface of gpu_runtime.h (mma.sync + ldmatrix on
// NVIDIA, MFMA / WMMA on AMD).
//
// The classic multistage design: a block owns BM = 128 tokens x BN = 128 or 256
// weight rows (AutoRowTile) and walks K in steps of BK = 64. Each step's two
// tiles travel global -> shared by 16-byte async copies (cp.async), three steps
// deep (four as an option for the one-block-per-SM tiles), into rows padded to 72 halves (144 bytes: the 8 rows an ldmatrix phase
// reads start in distinct 16-byte bank groups). One barrier per step; the
// 128 x 256 tile puts it before the step's last 16-wide MMA slice (CUTLASS's
// multistage order: the next stage's first fragments load while the last slice
// multiplies), the 128 x 128 tile first in the step (the other order spills
// there). The waves form a 2 (tokens) x W/2 (rows) grid, each owning a (BM / 2)
// x (BN / (W/2)) tile of accumulators (64 x 32 or 64 x 64 with 8 waves of 32),
// fragments of the next slice loaded while the current one multiplies. Chunks
// past n, rows or cols are zero-filled in shared memory by plain stores, and
// results are stored guarded.
//
// A third row tile, 128 x 224 (waves 4 tokens x 2 rows of 32 x 112
// accumulators), exists for grids that 256-row tiles fill unevenly: 14336
// rows at n = 512 make 224 blocks of 128 x 256 (1.7 waves of one block per SM
// on 132 SMs) but 256 of 128 x 224 (1.94 waves). Optionally 4 stages instead
// of 3 for the 64-wide K steps of the one-block-per-SM tiles (DenseTileConfig).
//
// Grid: x = token tiles (fastest: blocks running together share a weight tile
// through L2), y = row tiles, z = K splits. When rows x tokens give too few
// blocks for the chip (short matrices, n near the crossover), K is split and
// the partial sums meet in y through atomicAdd after a memset (their order,
// and so the last bits, may vary between runs then).
//
// AMD: LDS is 64 KiB per workgroup, so K steps of 32, two stages and the
// 128 x 128 tile only (AsyncCopy16 is a plain load + store there, so deeper
// stages would not help).
#include <algorithm>
#include <cstdlib>

#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/matmul_dense_wgmma.h"
#include "kernels/quant_device.h"
#include "kernels/swiglu_device.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kBM = 128;  // tokens per block
// K per step (BK) and pipeline depth. NVIDIA: 64-wide steps, three stages by
// default (four 16-wide MMA slices per barrier; 32-wide steps give only two
// and the pipeline drains at every barrier), 32 with four stages as an option;
// 128 x 128 tiles then take 108 / 80 KiB, two blocks per SM. AMD: 64 KiB of LDS
// per workgroup: 32-wide steps, two stages (40 KiB).
#if defined(RF_GPU_CUDA)
constexpr int kDefaultBK = 64;
constexpr int Stages(int bk) { return bk == 32 ? 4 : 3; }
#else
constexpr int kDefaultBK = 32;
constexpr int Stages(int) { return 2; }
#endif
// Halves per shared row: BK + 8 (144 or 80 bytes), so the 8 rows an ldmatrix
// phase reads start in distinct 16-byte bank groups.
constexpr int Ld(int bk) { return bk + 8; }

// kSt: pipeline stages (0 = Stages(BK)).
constexpr int StagesOf(int bk, int st) { return st > 0 ? st : Stages(bk); }
template <int BN, int BK, int kSt>
constexpr size_t DenseSmemBytes() {
  return sizeof(__half) * static_cast<size_t>(StagesOf(BK, kSt)) * (kBM + BN) * Ld(BK);
}
// 128 x 128: <= 128 registers a thread, two blocks per SM; 128 x 224 / 256: one.
constexpr int DenseMinBlocks(int bn) { return bn <= 128 ? 2 : 1; }
// Waves along the token dimension: 2 (wave tiles of 64 tokens), or 4 for the
// 224-row tile (32 tokens x 112 rows: 224 / 4 = 56 rows would not be whole
// 16-row fragments).
constexpr int WavesM(int bn) { return bn == 224 ? 4 : 2; }

// Epilogues: kEpiPlain writes y[n][rows] (or adds to it: K splits);
// kEpiSwiGLU reads rows 2i / 2i + 1 as gate / up of FFN column i (a weight
// matrix interleaved by LaunchDequantizeF16Pair) and writes
// o = silu(gate) * up as float into y[n][rows / 2] and as f16 into
// e.out16, plus the gate / up values themselves into e.gate / e.up where not
// null (never with K splits).
constexpr int kEpiPlain = 0, kEpiSwiGLU = 1;
struct SwiGLUEpilogue {
  uint16_t* out16 = nullptr;
  float* gate = nullptr;
  float* up = nullptr;
};

#if !defined(RF_GPU_CUDA)
// SiluMul, as the SwiGLU kernel; f16 by round to nearest even, as LaunchSwiGLUF16.
__device__ __forceinline__ void StoreSwiGLU(float g, float u, float* out, const SwiGLUEpilogue& e, int64_t i) {
  const float o = SiluMul(g, u);
  if (e.gate != nullptr) e.gate[i] = g;
  if (e.up != nullptr) e.up[i] = u;
  out[i] = o;
  e.out16[i] = __half_as_ushort(__float2half_rn(o));
}
#endif

template <int BN, int BK, bool kOverlap, int kSt, int kEpi = kEpiPlain>
__global__ void __launch_bounds__(kThreads, DenseMinBlocks(BN))
    GemmDenseKernel(const __half* __restrict__ w, int64_t rows, int64_t cols, const __half* __restrict__ x,
                    float* __restrict__ y, int n, int steps_per_split, bool accumulate, SwiGLUEpilogue epi) {
  if constexpr (!kBuildMatrixCoreKernels) {  // never launched on this target (kernels/mma_amd.h)
    __builtin_trap();
    return;
  }
  constexpr int kWaves = kThreads / kWaveSize;  // 8 (NVIDIA, RDNA) or 4 (CDNA)
  constexpr int kWavesM = WavesM(BN), kWavesN = kWaves / kWavesM;
  constexpr int kWM = kBM / kWavesM, kWN = BN / kWavesN;  // one wave's tile
  constexpr int kFT = kWM / 16, kFR = kWN / 16;          // fragments per wave
  static_assert(kWN % 16 == 0 && kWM % 16 == 0, "wave tile must be whole 16x16 fragments");
  constexpr int kBK = BK, kLd = Ld(BK), kStages = StagesOf(BK, kSt);
  constexpr int kChunksPerRow = kBK / 8;                  // 16-byte chunks per tile row per step
  constexpr int kRowsPerPass = kThreads / kChunksPerRow;  // tile rows one pass of copies covers
  constexpr int kStageHalves = (kBM + BN) * kLd;
  constexpr int kPassesA = kBM / kRowsPerPass, kPassesB = BN / kRowsPerPass;
  static_assert(kBM % kRowsPerPass == 0 && BN % kRowsPerPass == 0);

  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* const smem = reinterpret_cast<__half*>(smem_raw);

  const int t = threadIdx.x, wave = t / kWaveSize;
  const int tok0 = blockIdx.x * kBM;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * BN;
  const int kcols = static_cast<int>(cols);  // rows of < 2^31 values
  const int n_steps = (kcols + kBK - 1) / kBK;
  const int step_begin = static_cast<int>(blockIdx.z) * steps_per_split;
  const int step_end = n_steps < step_begin + steps_per_split ? n_steps : step_begin + steps_per_split;

  // This thread's chunks: column 8 * (t % kChunksPerRow) of tile rows
  // t / kChunksPerRow + p * kRowsPerPass, activation rows (passes of A) then
  // weight rows (passes of B); bit p of `valid`: pass p's row exists. Only k
  // moves between steps. (Few live registers: the 128 x 128 tile must fit 128.)
  const int cr = t / kChunksPerRow, cc = 8 * (t % kChunksPerRow);
  uint32_t valid = 0;
#pragma unroll
  for (int p = 0; p < kPassesA; ++p) valid |= (tok0 + cr + p * kRowsPerPass < n ? 1u : 0u) << p;
#pragma unroll
  for (int p = 0; p < kPassesB; ++p) valid |= (row0 + cr + p * kRowsPerPass < rows ? 1u : 0u) << (kPassesA + p);
  const int64_t pass_stride = static_cast<int64_t>(kRowsPerPass) * cols;
  const __half* const xa = x + static_cast<int64_t>(valid & 1u ? tok0 + cr : 0) * cols + cc;
  const __half* const wb = w + ((valid >> kPassesA) & 1u ? row0 + cr : 0) * cols + cc;
  auto load_step = [&](int step, int stage) {
    __half* const dst = smem + stage * kStageHalves + cr * kLd + cc;
    const int k0 = step * kBK;
    const bool k_ok = k0 + cc < kcols;  // cols % 8 == 0: a chunk is whole or absent
#pragma unroll
    for (int p = 0; p < kPassesA; ++p) {
      __half* const d = dst + p * kRowsPerPass * kLd;
      if (k_ok && ((valid >> p) & 1u)) {
        AsyncCopy16(d, xa + p * pass_stride + k0);
      } else {
        *reinterpret_cast<uint4*>(d) = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int p = 0; p < kPassesB; ++p) {
      __half* const d = dst + (kBM + p * kRowsPerPass) * kLd;
      if (k_ok && ((valid >> (kPassesA + p)) & 1u)) {
        AsyncCopy16(d, wb + p * pass_stride + k0);
      } else {
        *reinterpret_cast<uint4*>(d) = make_uint4(0, 0, 0, 0);
      }
    }
  };

  const int wm = (wave % kWavesM) * kWM, wn = (wave / kWavesM) * kWN;
  mma::FragC acc[kFT][kFR];
#pragma unroll
  for (int i = 0; i < kFT; ++i)
#pragma unroll
    for (int j = 0; j < kFR; ++j) mma::Zero(acc[i][j]);

  constexpr int kSlices = kBK / 16;  // 16-wide MMA slices per step (2 or 4: even)
  static_assert(kSlices % 2 == 0, "fragment buffers alternate by slice parity");
  mma::FragA a[2][kFT];
  mma::FragB b[2][kFR];
  auto load_frags = [&](int buf, int stage, int kk) {
    const __half* const as = smem + stage * kStageHalves + 16 * kk;
    const __half* const bs = as + kBM * kLd;
#pragma unroll
    for (int i = 0; i < kFT; ++i) mma::LoadA(a[buf][i], as + (wm + 16 * i) * kLd, kLd);
#pragma unroll
    for (int j = 0; j < kFR; ++j) mma::LoadB(b[buf][j], bs + (wn + 16 * j) * kLd, kLd);
  };
  auto mma_slice = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kFT; ++i)
#pragma unroll
      for (int j = 0; j < kFR; ++j) mma::Mma(acc[i][j], a[buf][i], b[buf][j]);
  };

  // Steps begin .. begin + kStages - 2 in flight before the loop, one commit group each.
#pragma unroll
  for (int p = 0; p < kStages - 1; ++p) {
    if (step_begin + p < step_end) load_step(step_begin + p, p);
    AsyncCommit();
  }
  const int total = step_end - step_begin;
  if constexpr (kOverlap) {
    // The barrier sits before the step's LAST slice (CUTLASS's multistage
    // order): after it the next stage is complete and every wave is done
    // reading this one, so the last slice's MMAs overlap the next stage's first
    // fragment loads, and the copy issued at the next step's first slice may
    // overwrite the stage just read. One barrier per step, no wave idles at it
    // with an empty pipe.
    AsyncWait<kStages - 2>();
    __syncthreads();
    int read = 0, write = kStages - 1;
    if (total > 0) load_frags(0, 0, 0);
    for (int it = 0; it < total; ++it) {
#pragma unroll
      for (int kk = 0; kk < kSlices; ++kk) {
        const int cur = kk % 2;
        if (kk == kSlices - 1) read = read + 1 == kStages ? 0 : read + 1;
        if (kk < kSlices - 1 || it + 1 < total) load_frags(cur ^ 1, read, (kk + 1) % kSlices);
        if (kk == 0) {
          if (it + kStages - 1 < total) load_step(step_begin + it + kStages - 1, write);
          AsyncCommit();
          write = write + 1 == kStages ? 0 : write + 1;
        }
        if (kk == kSlices - 2) {
          // Step it + 1's copies are done (this thread's, then everyone's), and
          // every wave has loaded its last fragments of step it.
          AsyncWait<kStages - 2>();
          __syncthreads();
        }
        mma_slice(cur);
      }
    }
  } else {
    for (int it = 0; it < total; ++it) {
      // This thread's copies of step it are done; after the barrier everyone's
      // are, and every wave has finished reading the stage the next copy overwrites.
      AsyncWait<kStages - 2>();
      __syncthreads();
      if (it + kStages - 1 < total) load_step(step_begin + it + kStages - 1, (it + kStages - 1) % kStages);
      AsyncCommit();
      const int stage = it % kStages;
      load_frags(0, stage, 0);
#pragma unroll
      for (int kk = 0; kk < kSlices; ++kk) {
        if (kk + 1 < kSlices) load_frags((kk + 1) % 2, stage, kk + 1);
        mma_slice(kk % 2);
      }
    }
  }
  AsyncWaitAll();  // no copy may outlive the block (only empty groups remain)

  if constexpr (kEpi == kEpiSwiGLU) {
    // Rows row0 + wn + 16j + c with c even are gates, c + 1 their ups: both in
    // this lane on NVIDIA (C fragment columns 2q, 2q + 1), in lanes l and
    // l ^ 1 on AMD (one C column a lane).
    const int64_t half_rows = rows / 2;
#if defined(RF_GPU_CUDA)
    // Staged through shared memory (free once every wave is past the main
    // loop): one pass per written array (out + out16, gate, up), each thread
    // putting its values of the block's kBM x BN/2 tile in place, then the
    // block writing whole rows with 16-byte (f32) / 8-byte (f16) stores. The
    // fragment layout alone would give 4- and 2-byte stores spread over 8 rows.
    constexpr int kHalf = BN / 2, kSLd = kHalf + 4;  // kSLd % 32 == 4: conflict-free fragment writes
    static_assert(sizeof(float) * kBM * kSLd <= DenseSmemBytes<BN, BK, kSt>(), "staging tile must fit");
    float* const stage = reinterpret_cast<float*>(smem_raw);
    const int l = static_cast<int>(threadIdx.x % 32), g = l / 4, q = (l % 4) * 2;
    const int64_t col0 = row0 / 2;  // first FFN column of the block (row0 even)
    const bool vec = half_rows % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(epi.out16) % 8 == 0 &&
                     (epi.gate == nullptr || reinterpret_cast<uintptr_t>(epi.gate) % 16 == 0) &&
                     (epi.up == nullptr || reinterpret_cast<uintptr_t>(epi.up) % 16 == 0);
    for (int pass = 0; pass < 3; ++pass) {
      float* const dst = pass == 0 ? y : pass == 1 ? epi.gate : epi.up;
      if (dst == nullptr) continue;  // uniform across the block
      __syncthreads();  // the main loop's (or the last pass's) reads of shared memory are done
#pragma unroll
      for (int i = 0; i < kFT; ++i) {
#pragma unroll
        for (int j = 0; j < kFR; ++j) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
#pragma unroll
            for (int hm = 0; hm < 2; ++hm) {
              const float gv = acc[i][j].x[4 * h + 2 * hm], uv = acc[i][j].x[4 * h + 2 * hm + 1];
              const float v = pass == 0 ? SiluMul(gv, uv) : pass == 1 ? gv : uv;
              stage[(wm + 16 * i + g + 8 * hm) * kSLd + (wn + 16 * j + 8 * h + q) / 2] = v;
            }
          }
        }
      }
      __syncthreads();
      constexpr int kQuads = kHalf / 4;  // 16-byte chunks per staged row
      for (int e = threadIdx.x; e < kBM * kQuads; e += kThreads) {
        const int m = e / kQuads, c = 4 * (e % kQuads);
        const int tok = tok0 + m;
        const int64_t col = col0 + c;
        if (tok >= n || col >= half_rows) continue;
        const float4 v = *reinterpret_cast<const float4*>(stage + m * kSLd + c);
        const int64_t at = static_cast<int64_t>(tok) * half_rows + col;
        if (vec) {  // half_rows % 4 == 0: the chunk is whole
          *reinterpret_cast<float4*>(dst + at) = v;
          if (pass == 0) {
            const uint32_t lo = __half_as_ushort(__float2half_rn(v.x)) |
                                (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(v.y))) << 16);
            const uint32_t hi = __half_as_ushort(__float2half_rn(v.z)) |
                                (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(v.w))) << 16);
            *reinterpret_cast<uint2*>(epi.out16 + at) = make_uint2(lo, hi);
          }
        } else {
          const float vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            if (col + k < half_rows) {
              dst[at + k] = vs[k];
              if (pass == 0) epi.out16[at + k] = __half_as_ushort(__float2half_rn(vs[k]));
            }
          }
        }
      }
    }
#else
#pragma unroll
    for (int i = 0; i < kFT; ++i) {
#pragma unroll
      for (int j = 0; j < kFR; ++j) {
        mma::ForEachAcc(acc[i][j], [&](int m, int c, float v) {
          const float partner = WaveShflXor(v, 1);
          const int tok = tok0 + wm + 16 * i + m;
          const int64_t r = row0 + wn + 16 * j + c;
          if (c % 2 == 0 && tok < n && r + 1 < rows) {
            StoreSwiGLU(v, partner, y, epi, static_cast<int64_t>(tok) * half_rows + r / 2);
          }
        });
      }
    }
#endif
  } else {
    // acc[i][j] element (m, c) is y[token tok0 + wm + 16i + m][row row0 + wn + 16j + c].
#pragma unroll
    for (int i = 0; i < kFT; ++i) {
#pragma unroll
      for (int j = 0; j < kFR; ++j) {
        mma::ForEachAcc(acc[i][j], [&](int m, int c, float v) {
          const int tok = tok0 + wm + 16 * i + m;
          const int64_t r = row0 + wn + 16 * j + c;
          if (tok < n && r < rows) {
            float* p = y + static_cast<int64_t>(tok) * rows + r;
            if (accumulate) {
              atomicAdd(p, v);
            } else {
              *p = v;
            }
          }
        });
      }
    }
  }
}

// Benchmark override (SetDenseGemmConfig). RF_DENSE_MIN_N=N in the environment
// sets min_n at start-up, so whole-model benchmarks can compare the paths
// (e.g. RF_DENSE_MIN_N=1000000: dense path off).
DenseGemmConfig InitialDenseConfig() {
  DenseGemmConfig c;
  if (const char* e = std::getenv("RF_DENSE_MIN_N"); e != nullptr) c.min_n = std::atoi(e);
  return c;
}
DenseGemmConfig g_dense = InitialDenseConfig();
DenseTileConfig g_tiles;
// The Hopper wgmma + TMA GEMM (kernels/matmul_dense_wgmma.hip) where available;
// RF_DENSE_WGMMA=0|1 in the environment sets it at start-up.
constexpr bool kDenseWgmmaDefault = true;
bool InitialDenseWgmma() {
  if (const char* e = std::getenv("RF_DENSE_WGMMA"); e != nullptr) return std::atoi(e) != 0;
  return kDenseWgmmaDefault;
}
bool g_wgmma = InitialDenseWgmma();
// The wgmma path unless a benchmark / test forces an mma.sync variant (row
// tile, K step or main loop; K splits and min_n are honoured by both).
[[maybe_unused]] bool WgmmaTakes() {
  return g_wgmma && g_dense.row_tile == 0 && g_dense.k_step == 0 && g_dense.overlap == 0;
}
// The defaults of DenseTileConfig's 0, from pp512 A/B runs of bench_gpu_decode
// on the H100 (tok/s, Q4_K_M / Q8_0, same call each): 4 stages 13805 / 13978
// vs 3 stages 13730 / 13832 at 08:43 UTC, but 13792 / 13901 vs 13802 / 13863
// at 08:57 (noise: 3 kept); 224 tiles 13448 / 13440 and 13497 / 13465
// (slower while the side stream dequantizes the next matrix: it loses the SMs
// the ragged second wave of 256-row tiles leaves it), yet with resident f16
// weights (GpuBackend::SetDenseResidentF16, nothing dequantized) 16011 / 16177
// vs 15402 / 15561; 128 x 128 for short grids 13556 / 13676 and 13497 / 13742.
constexpr bool kTile224Default = false;
constexpr int kStagesDefault = 3;
[[maybe_unused]] constexpr int kShortTileDefault = 256;
[[maybe_unused]] bool Tile224On() { return g_tiles.tile224 > 0 || (g_tiles.tile224 == 0 && kTile224Default); }
[[maybe_unused]] int StagesK64() { return g_tiles.stages == 3 || g_tiles.stages == 4 ? g_tiles.stages : kStagesDefault; }

// Raises the kernel's dynamic shared memory limit to what its tile needs (once
// per process); false where the device cannot give that much (e.g. 216 KiB
// for 128 x 256 with 4 stages on a GPU of 164 KiB per block).
template <int BN, int BK, bool kOverlap, int kSt, int kEpi = kEpiPlain>
bool EnsureSmem() {
  static const bool ok = [] {
#if defined(RF_GPU_CUDA)
    const auto attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
#else
    const auto attr = hipFuncAttributeMaxDynamicSharedMemorySize;
#endif
    const bool set = hipFuncSetAttribute(reinterpret_cast<const void*>(&GemmDenseKernel<BN, BK, kOverlap, kSt, kEpi>), attr,
                                         static_cast<int>(DenseSmemBytes<BN, BK, kSt>())) == hipSuccess;
    // A refused size is answered by the caller (it falls back), not left for
    // the next launch check.
    if (!set) (void)hipGetLastError();
    return set;
  }();
  return ok;
}

template <int BN, int BK, bool kOverlap, int kSt = 0, int kEpi = kEpiPlain>
void LaunchTile(const __half* w, int64_t rows, int64_t cols, const __half* x, float* y, int n, int splits_hint,
                Stream s, SwiGLUEpilogue epi = {}) {
  const unsigned tok_tiles = Blocks(n, kBM), row_tiles = Blocks(rows, BN);
  const int64_t n_steps = (cols + BK - 1) / BK;
  const int64_t tiles = static_cast<int64_t>(tok_tiles) * row_tiles;
  int64_t splits = splits_hint;
  if (splits <= 0) {
    // Split K only while the grid is short of one resident wave, keeping at
    // least 512 values of K per split.
    const int64_t resident = static_cast<int64_t>(MultiprocessorCount()) * DenseMinBlocks(BN);
    splits = tiles >= resident ? 1 : resident / tiles;
  }
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, n_steps * BK / 512));
  int64_t per = (n_steps + splits - 1) / splits;
  splits = (n_steps + per - 1) / per;
  if constexpr (kEpi != kEpiPlain) {  // the epilogue needs whole sums
    splits = 1;
    per = n_steps;
  }
  if (splits > 1) (void)hipMemsetAsync(y, 0, sizeof(float) * static_cast<size_t>(n) * rows, ToStream(s));
  constexpr size_t kSmem = DenseSmemBytes<BN, BK, kSt>();
  (void)EnsureSmem<BN, BK, kOverlap, kSt, kEpi>();  // a failure shows as the launch's error
  const dim3 grid(tok_tiles, row_tiles, static_cast<unsigned>(splits));
  GemmDenseKernel<BN, BK, kOverlap, kSt, kEpi>
      <<<grid, kThreads, kSmem, ToStream(s)>>>(w, rows, cols, x, y, n, static_cast<int>(per), splits > 1, epi);
}

// Row tile by grid shape (H100 sweep, docs/gpu.md "Dense prefill GEMM"): 128 x
// 256 (one block of 8 waves per SM, 64 x 64 accumulators a wave) is ~5-10%
// faster per block than 128 x 128 (two blocks per SM) when the grid fills the
// chip about evenly: at most one wave of blocks (short grids: K splits add
// blocks, up to 512 K values each) or a second wave that is >= 80% full. With
// more or ragged waves the 128 x 128 tile's two blocks per SM hide the tail
// better (e.g. 14336 x 4096 at n = 384: 237 vs 207 TFLOP/s).
//
// 128 x 224 (DenseTileConfig::tile224, Tile224On) where the grid needs no K split and
// its whole waves of one block per SM cost less than 256's (224 rows of work
// a wave, plus 5% for its narrower wave tiles: 9 fragment loads per 14 MMAs
// against 8 per 16) and fill >= 90% of them: 14336 rows at n = 512 (2 waves
// of 224 instead of 2 of 256) or 1024.
[[maybe_unused]] bool Tile224Fits(int64_t rows, int n, int64_t sms) {
  const int64_t tok = Blocks(n, kBM);
  const int64_t t224 = tok * Blocks(rows, 224), t256 = tok * Blocks(rows, 256);
  if (t256 <= sms) return false;  // short grids: K splits
  const int64_t w224 = (t224 + sms - 1) / sms, w256 = (t256 + sms - 1) / sms;
  return 100 * t224 >= 90 * w224 * sms && 105 * 224 * w224 < 100 * 256 * w256;
}

int AutoRowTile(int64_t rows, int64_t cols, int n) {
#if defined(RF_GPU_CUDA)
  const int64_t sms = MultiprocessorCount();
  if (Tile224On() && Tile224Fits(rows, n, sms)) return 224;
  const int64_t tiles256 = static_cast<int64_t>(Blocks(n, kBM)) * Blocks(rows, 256);
  const int64_t max_splits = std::max<int64_t>(1, cols / 512);
  if (tiles256 <= sms) {
    const int st = g_tiles.short_tile == 128 || g_tiles.short_tile == 256 ? g_tiles.short_tile : kShortTileDefault;
    return tiles256 * max_splits >= sms ? st : 128;
  }
  if (tiles256 <= 2 * sms) return 10 * tiles256 >= 8 * 2 * sms ? 256 : 128;
  return 128;
#else
  (void)rows, (void)cols, (void)n;
  return 128;
#endif
}

constexpr size_t Align256(size_t b) { return (b + 255) / 256 * 256; }

}  // namespace

void SetDenseGemmConfig(const DenseGemmConfig& c) { g_dense = c; }
DenseGemmConfig GetDenseGemmConfig() { return g_dense; }
void SetDenseTileConfig(const DenseTileConfig& c) { g_tiles = c; }
DenseTileConfig GetDenseTileConfig() { return g_tiles; }
void SetDenseWgmma(bool on) { g_wgmma = on; }
bool GetDenseWgmma() { return g_wgmma; }
bool DenseWgmmaActive() { return WgmmaTakes() && DenseWgmmaAvailable(); }
int DenseMinTokensResident() { return DenseWgmmaActive() ? kDenseMinTokensResidentWgmma : kDenseMinTokensResident; }

void LaunchGemmF16(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n,
                   Stream s) {
  if (n <= 0 || rows <= 0) return;
  const __half* w = reinterpret_cast<const __half*>(w16);
  const __half* x = reinterpret_cast<const __half*>(x16);
  const int rt = g_dense.row_tile;
  const int tile = rt == 128 || rt == 224 || rt == 256 ? rt : AutoRowTile(rows, cols, n);
  const int sp = g_dense.splits;
#if defined(RF_GPU_CUDA)
  if (WgmmaTakes() && LaunchGemmF16Wgmma(w16, rows, cols, x16, y, n, sp, s)) return;
  const bool k32 = g_dense.k_step == 32;
  // 128 x 224: the overlapped loop, 64-wide K steps (the only variant built).
  // 4 stages only where the device gives the tile that much shared memory.
  const bool deep = StagesK64() == 4 && !k32 &&
                    (tile == 224 ? EnsureSmem<224, 64, true, 4>() : EnsureSmem<256, 64, true, 4>());
  if (tile == 224) {
    return deep ? LaunchTile<224, 64, true, 4>(w, rows, cols, x, y, n, sp, s)
                : LaunchTile<224, 64, true>(w, rows, cols, x, y, n, sp, s);
  }
  // Main loop: the overlapped one only for 128 x 256 (at 128 x 128 it spills
  // under the 128-register cap of two blocks per SM and runs 10-30% slower).
  const bool overlap = g_dense.overlap > 0 || (g_dense.overlap == 0 && tile == 256);
  if (!overlap) {  // the simple loop (barrier first in each step)
    if (tile == 256) {
      return k32 ? LaunchTile<256, 32, false>(w, rows, cols, x, y, n, sp, s)
                 : LaunchTile<256, 64, false>(w, rows, cols, x, y, n, sp, s);
    }
    return k32 ? LaunchTile<128, 32, false>(w, rows, cols, x, y, n, sp, s)
               : LaunchTile<128, 64, false>(w, rows, cols, x, y, n, sp, s);
  }
  if (tile == 256) {
    if (k32) return LaunchTile<256, 32, true>(w, rows, cols, x, y, n, sp, s);
    return deep ? LaunchTile<256, 64, true, 4>(w, rows, cols, x, y, n, sp, s)
                : LaunchTile<256, 64, true>(w, rows, cols, x, y, n, sp, s);
  }
  if (k32) return LaunchTile<128, 32, true>(w, rows, cols, x, y, n, sp, s);
  LaunchTile<128, kDefaultBK, true>(w, rows, cols, x, y, n, sp, s);
#else
  (void)tile;  // AMD: 128 x 128, 32-wide steps, the simple loop
  LaunchTile<128, kDefaultBK, false>(w, rows, cols, x, y, n, sp, s);
#endif
}

void LaunchGemmF16SwiGLU(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* out,
                         uint16_t* out16, float* gate, float* up, int n, Stream s) {
  if (n <= 0 || rows <= 0) return;
  const __half* w = reinterpret_cast<const __half*>(w16);
  const __half* x = reinterpret_cast<const __half*>(x16);
  const SwiGLUEpilogue e{out16, gate, up};
  constexpr int kE = kEpiSwiGLU;
#if defined(RF_GPU_CUDA)
  if (WgmmaTakes() && g_tiles.swiglu_tile == 0 &&
      LaunchGemmF16SwiGLUWgmma(w16, rows, cols, x16, out, out16, gate, up, n, s)) {
    return;
  }
  // The plain GEMM's tile rule (no K splits: the grid of 2 x FFN rows is
  // wide), its main loop per tile; 64-wide K steps only.
  const int rt = g_dense.row_tile, st = g_tiles.swiglu_tile;
  const int tile = rt == 128 || rt == 224 || rt == 256   ? rt
                   : st == 128 || st == 224 || st == 256 ? st
                                                         : AutoRowTile(rows, cols, n);
  const bool deep = StagesK64() == 4 && (tile == 224   ? EnsureSmem<224, 64, true, 4, kE>()
                                         : tile == 256 ? EnsureSmem<256, 64, true, 4, kE>()
                                                       : false);
  if (tile == 224) {
    return deep ? LaunchTile<224, 64, true, 4, kE>(w, rows, cols, x, out, n, 1, s, e)
                : LaunchTile<224, 64, true, 0, kE>(w, rows, cols, x, out, n, 1, s, e);
  }
  if (tile == 256) {
    return deep ? LaunchTile<256, 64, true, 4, kE>(w, rows, cols, x, out, n, 1, s, e)
                : LaunchTile<256, 64, true, 0, kE>(w, rows, cols, x, out, n, 1, s, e);
  }
  LaunchTile<128, 64, false, 0, kE>(w, rows, cols, x, out, n, 1, s, e);
#else
  LaunchTile<128, kDefaultBK, false, 0, kE>(w, rows, cols, x, out, n, 1, s, e);
#endif
}

size_t MatMulDenseActivationBytes(int64_t cols, int n) {
  return Align256(sizeof(uint16_t) * static_cast<size_t>(n) * static_cast<size_t>(cols));
}
size_t MatMulDenseWeightBytes(GgmlType type, int64_t rows, int64_t cols) {
  if (type == GgmlType::F16) return 0;  // used in place
  return Align256(sizeof(uint16_t) * static_cast<size_t>(rows) * static_cast<size_t>(cols));
}

// Per-shape crossover (H100 80GB HBM3, `bench_gpu_kernels crossover`, 2026-11-26
// 03:49 UTC): at n = 64..128 the in-loop GEMM (v5 / v4 / GemmMmaKernel) beats
// the whole dense path (conversion + dequantization + f16 GEMM) at every
// Llama-3-8B shape of Q4_K / Q6_K / Q8_0 (dense/in-loop 1.03-2.2; Q6_K
// 14336x4096 ties at 0.97-0.99), and a 32-decode step with a 64-token chunk
// ran 21.9 ms with dense from 65 tokens vs 17.9 without; from 192 dense wins
// by 12-50%, except Q4_K's 1024-row K/V projections, whose in-loop GEMM stays
// 5-9% faster up to n = 512 (the 2.3 MB matrix is decoded faster than its
// 8 MB f16 copy is written and read back).
//
// Types with no in-loop matrix-core GEMM (MatMulMmaTypeSupported: Q2_K, Q3_K;
// F32 never takes the dense path) would run the f32 tiled kernel past the
// small-batch path, so they go dense from the first n that path leaves.
int DenseMinTokensFor(GgmlType type, int64_t rows, int64_t cols) {
  (void)cols;
  if (!MatMulMmaTypeSupported(type)) return kSmallBatchMax + 1;
  if (type == GgmlType::Q4_K && rows <= 1024) return 1024;
  return kDenseMinTokens;
}

bool MatMulDenseSuits(GgmlType type, const void* w, int64_t rows, int64_t cols, int n) {
  return MatMulDenseSuitsPrepared(type, w, rows, cols, n, false);
}

bool MatMulDenseSuitsPrepared(GgmlType type, const void* w, int64_t rows, int64_t cols, int n, bool prepared,
                              bool resident) {
  if (!MatMulMmaAvailable() || !DequantizeF16Supported(type)) return false;
  // F32 weights keep their exact float path (f32 results within 1e-3).
  if (type == GgmlType::F32) return false;
  int min_n = DenseMinTokensFor(type, rows, cols);
  if (prepared) min_n = std::min(min_n, kDenseMinTokens);
  // Resident weights lower the general crossover only: the shapes kept
  // in-loop longer (small Q4_K) stay so, and results stay bit for bit those
  // without the cache from kDenseMinTokens on.
  if (resident && min_n == kDenseMinTokens) min_n = DenseMinTokensResident();
  if (g_dense.min_n > 0) min_n = g_dense.min_n;
  if (n < min_n || n <= kSmallBatchMax || rows <= 0 || cols <= 0 || cols % 8 != 0) return false;
  return type != GgmlType::F16 || reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

bool MatMulDenseTakes(GgmlType type, const void* w, int64_t rows, int64_t cols, int n, const DenseScratch& d) {
  if (d.x16 == nullptr ||
      !MatMulDenseSuitsPrepared(type, w, rows, cols, n, d.operands_prepared, d.weights_resident)) {
    return false;
  }
  if (MatMulDenseActivationBytes(cols, n) > d.x16_bytes) return false;
  const size_t wb = MatMulDenseWeightBytes(type, rows, cols);
  return wb == 0 || (d.w16 != nullptr && wb <= d.w16_bytes);
}

void LaunchMatMulDense(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n,
                       const DenseScratch& d, Stream s) {
  uint16_t* const x16 = static_cast<uint16_t*>(d.x16);
  LaunchConvertF16(x, static_cast<int64_t>(n) * cols, x16, s);
  LaunchMatMulDenseX16(type, w, rows, cols, x16, y, n, d, s);
}

void LaunchMatMulDenseX16(GgmlType type, const void* w, int64_t rows, int64_t cols, const uint16_t* x16, float* y,
                          int n, const DenseScratch& d, Stream s) {
  const uint16_t* w16 = static_cast<const uint16_t*>(w);
  if (type != GgmlType::F16) {
    LaunchDequantizeF16(type, w, rows, cols, static_cast<uint16_t*>(d.w16), s);
    w16 = static_cast<const uint16_t*>(d.w16);
  }
  LaunchGemmF16(w16, rows, cols, x16, y, n, s);
}

}  // namespace rocmforge::gpu
