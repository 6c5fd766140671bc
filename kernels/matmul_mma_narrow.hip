// Batched-decode GEMM v5 ("register-direct"), 9..128 tokens of Q4_K / Q6_K /
// Q8_0: y[n][rows] = x[n][cols] . W^T with f16 operands and float accumulation,
// through the mma:: interface of gpu_runtime.h. Chosen by LaunchMatMulMma
// (kernels/matmul_mma.hip, NarrowTile); docs/gpu.md "Narrow GEMM v5".
//
// Why: the v4 narrow kernel decoded each weight span into an f16 tile in shared
// memory and read it back with ldmatrix; shared-memory wavefronts (~530 per
// 128x64 block step) bounded it at 0.5-0.8 TB/s. Here the weights are the A
// operand (m = weight row, n = token) and each lane decodes the values its A
// registers hold straight from the raw bytes (mma::FillA): no f16 weight tile.
//
// Per block: 128 weight rows x BN tokens (16, 32, 64 or 128), K in 256-value
// spans (one K-quant super-block, or 8 Q8_0 blocks, per row), copied into
// shared memory by coalesced 16-byte async copies kS spans deep. Activations
// go to a small f16 tile per "chunk" of steps (64 K each), double buffered.
//
// K permutation: a sum over k does not care about the order of k, so A and B
// may both use any permutation of a 64-wide step. Logical k = 16 f + c of a
// step (fragment f, column c = 8 hi + 2 kq + e) is physical k
// 32 hi + 8 kq + 2 f + e. On NVIDIA (lane q = l % 4 holds c = 2q, 2q+1, 2q+8,
// 2q+9 of each fragment) a lane then needs, per row and step, the 8 bytes at
// 8q of each 32-value half, whatever the fragment: one 8-byte load (Q4_K: low
// nibbles = first half, high nibbles = second) or 2-byte loads (Q8_0 / Q6_K,
// whose blocks are only 2-byte aligned). The activation tile is stored in the
// same permuted order, so B still loads with ldmatrix.
//
// Waves: 4 row groups of 32 rows (2 A fragments), at most 2 token groups (of
// 64 tokens at BN = 128: 64 accumulators a lane), and the remaining waves
// split the steps of a chunk (K groups): every weight is decoded once per
// block per token group. B fragments are loaded per 16-K fragment, so only
// kFT of them are live (registers: accumulators, B, activations in flight). K groups' partial sums meet in shared memory at the
// end; blocks that split K further (blockIdx.z) meet in y through atomicAdd.
//
// Rows past the matrix are not copied: their shared bytes are stale, but a
// weight row m only reaches C row m, which is never stored. Tokens past n are
// zero in the activation tile.
#include <algorithm>

#include "kernels/gemm_parts.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

// Used by kernels/matmul_mma.hip (declared there too).
bool NarrowRegFits(GgmlType t, int bn);
void LaunchNarrowReg(GgmlType t, const GemmParts& parts, int64_t cols, const float* x, int n, int bn,
                     int blocks_per_sm, int forced_splits, int sm_count, Stream s);

namespace {

constexpr int kBM = 128;       // weight rows per block
constexpr int kThreads = 256;  // threads per block (a multiple of 64)

__host__ __device__ constexpr int SpanBytes(GgmlType t) { return 256 / BlockElems(t) * BlockBytes(t); }
// Shared bytes per row and span: room for the 14-byte lead of a 2-byte aligned
// span (Q6_K), rounded so that rows start 32 (or 96) bytes apart modulo 128:
// a half-warp's 8-byte loads (rows g..g+3, lanes q 0..3 at 8q) hit 16
// distinct 8-byte bank pairs.
__host__ __device__ constexpr int SlotBytes(GgmlType t) {
  int b = SpanBytes(t) % 16 == 0 ? SpanBytes(t) : SpanBytes(t) + 14;
  b = (b + 15) / 16 * 16;
  while ((b / 16) % 4 != 2) b += 16;
  return b;
}
// Steps (64 K) per activation chunk: the steps the K groups of wave-32 devices
// (8 waves) work on at once. Fixed by BN so the host can size shared memory
// without knowing the device's wave size.
// (4 activation float4 a thread at 16, 32 and 64 tokens: few enough registers
// to load the next chunk while this one computes.)
__host__ __device__ constexpr int ChunkSteps(int bn) { return bn <= 16 ? 4 : bn == 32 ? 2 : 1; }
__host__ __device__ constexpr int XLd(int bn) { return ChunkSteps(bn) * 64 + 8; }  // halves; rows 16 B apart mod 128
__host__ __device__ constexpr size_t XTileBytes(int bn) { return sizeof(__half) * static_cast<size_t>(bn) * XLd(bn); }
// K-group partial sums at the end, sized for 8 waves (the most K groups).
__host__ __device__ constexpr size_t RedBytes(int bn) {
  return sizeof(float) * static_cast<size_t>(8 / (4 * (bn / 32 > 2 ? 2 : bn / 32 > 1 ? bn / 32 : 1)) - 1) * kBM * bn;
}
// Resident blocks per SM the registers are cut for: at 128 tokens a lane holds
// 64 accumulators, which leave no room for a second block.
__host__ __device__ constexpr int BlocksPerSm(int bn) { return bn <= 64 ? 2 : 1; }
struct Plan {
  int stages;  // spans in flight
  int xbufs;   // activation chunk tiles
};
#if defined(RF_GPU_CUDA)
constexpr size_t kSmemBudget = 113 * 1024;  // two blocks per SM
#else
constexpr size_t kSmemBudget = 64 * 1024;  // a workgroup's LDS
#endif
__host__ __device__ constexpr size_t SmemBytes(GgmlType t, int bn, int stages, int xbufs) {
  const size_t main = static_cast<size_t>(xbufs) * XTileBytes(bn) + static_cast<size_t>(stages) * kBM * SlotBytes(t);
  return main > RedBytes(bn) ? main : RedBytes(bn);
}
constexpr Plan PlanFor(GgmlType t, int bn) {
  const Plan tries[] = {{3, 2}, {2, 2}, {2, 1}};
  for (const Plan& p : tries) {
    if (SmemBytes(t, bn, p.stages, p.xbufs) <= kSmemBudget) return p;
  }
  return {0, 0};
}

__device__ __forceinline__ uint32_t Half2Bits(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }
__device__ __forceinline__ __half2 BitsHalf2(uint32_t b) { return *reinterpret_cast<const __half2*>(&b); }
// Bytes 0 and 1 of w (< 256 each) as half2(1024 + b0, 1024 + b1): a byte under
// the exponent of 1024.0 (0x64) is its mantissa, exactly.
__device__ __forceinline__ __half2 Bytes1024(uint32_t w) { return BitsHalf2(__byte_perm(w, 0x64646464u, 0x5140u)); }
__device__ __forceinline__ uint32_t LoadU16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }

// The bytes and scales one lane needs of one weight row for one step (st,
// 0..3 within the span whose bytes start at `slot` in shared memory), loaded
// once per step by Load(); Pair(f, c) then decodes the half2 of logical
// columns c, c+1 (c even) of fragment f from registers only. Physical k within
// the step: 32 hi + 8 kq + 2 f + e (hi = c / 8, kq = c % 8 / 2, e = c % 2): the
// lane reads 8 bytes at 8 kq of each 32-value half, whatever f.
template <GgmlType T>
struct RowStep;

__device__ __forceinline__ uint32_t PairBits(uint2 q, int f) { return (f < 2 ? q.x : q.y) >> (16 * (f & 1)); }

template <>
struct RowStep<GgmlType::Q4_K> {
  uint2 q;          // 8 quant bytes: low nibbles = first half, high nibbles = second
  __half2 d[2], c[2];  // per half: (d * scale), (-dmin * min)
  __device__ void Load(const uint8_t* slot, int st, int kq) {
    // d, dmin, 12 scale bytes as one 16-byte load (a quarter-warp reads 2 rows).
    const uint4 head = *reinterpret_cast<const uint4*>(slot);
    q = *reinterpret_cast<const uint2*>(slot + 16 + 32 * st + 8 * kq);
    const float dv = HalfBitsToFloat(static_cast<uint16_t>(head.x & 0xffffu));
    const float mv = HalfBitsToFloat(static_cast<uint16_t>(head.x >> 16));
    const uint32_t w0 = head.y, w1 = head.z, w2 = head.w;
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      int sc, m;
      ScaleMinK4Words(2 * st + hi, w0, w1, w2, &sc, &m);
      d[hi] = __float2half2_rn(dv * static_cast<float>(sc));
      c[hi] = __float2half2_rn(-mv * static_cast<float>(m));
    }
  }
  __device__ __half2 Pair(int f, int col) const {
    const int hi = (col >> 3) & 1;
    const uint32_t bits = (PairBits(q, f) >> (4 * hi)) & 0x0F0Fu;
    return __hfma2(__hsub2(Bytes1024(bits), BitsHalf2(0x64006400u)), d[hi], c[hi]);
  }
};

template <>
struct RowStep<GgmlType::Q8_0> {
  uint2 q[2];   // per half (block 2 st + hi): 8 int8
  __half2 d[2];
  __device__ void Load(const uint8_t* slot, int st, int kq) {
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      const uint8_t* b = slot + 34 * (2 * st + hi);  // block: d, then 32 int8 (2-byte aligned)
      uint32_t wv[2];
      LoadWords<2>(b + 2 + 8 * kq, wv);
      q[hi] = make_uint2(wv[0], wv[1]);
      d[hi] = BitsHalf2(LoadU16(b) * 0x10001u);
    }
  }
  __device__ __half2 Pair(int f, int col) const {
    const int hi = (col >> 3) & 1;
    const uint32_t bits = PairBits(q[hi], f) ^ 0x8080u;  // int8 + 128 in bytes 0, 1
    return __hmul2(__hsub2(Bytes1024(bits), BitsHalf2(0x64806480u)), d[hi]);  // (v + 1152 - 1152) * d
  }
};

template <>
struct RowStep<GgmlType::Q6_K> {
  uint2 ql[2], qh;  // low 4 bits per half (quarter 2 (st % 2) + hi), shared high 2 bits
  __half2 d[2];
  int shift;        // 0 or 4: low or high nibbles of ql
  int qshift;       // 2 * quarter of the first half
  __device__ void Load(const uint8_t* slot, int st, int kq) {
    const int half = st >> 1, l = 8 * kq;
    shift = (st & 1) * 4;
    qshift = (st & 1) * 4;
    const float dv = HalfBitsToFloat(static_cast<uint16_t>(LoadU16(slot + 208)));
    uint32_t wv[2];
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      LoadWords<2>(slot + half * 64 + 32 * hi + l, wv);
      ql[hi] = make_uint2(wv[0], wv[1]);
      const int sc = static_cast<int8_t>(slot[192 + half * 8 + ((st & 1) * 2 + hi) * 2 + (kq >> 1)]);
      d[hi] = __float2half2_rn(dv * static_cast<float>(sc));
    }
    LoadWords<2>(slot + 128 + half * 32 + l, wv);
    qh = make_uint2(wv[0], wv[1]);
  }
  __device__ __half2 Pair(int f, int col) const {
    const int hi = (col >> 3) & 1;
    const uint32_t lo4 = (PairBits(ql[hi], f) >> shift) & 0x0F0Fu;
    const uint32_t hi2 = ((PairBits(qh, f) >> (qshift + 2 * hi)) & 0x0303u) << 4;
    return __hmul2(__hsub2(Bytes1024(lo4 | hi2), BitsHalf2(0x64206420u)), d[hi]);
  }
};

// Which RowStep a lane's A pair (m, c) decodes from. A RowStep covers one row
// and one kq (both halves), so pairs that differ only in c / 8 share one. On
// NVIDIA a lane's pairs are (g, 2q) (g+8, 2q) (g, 2q+8) (g+8, 2q+8): two
// states, pairs 0 and 1. Elsewhere one state per pair: pair p = c % kAPerLane
// / 2, as the lane's items are one run of k starting at a multiple of
// kAPerLane (tests/unit/test_kernels_mma_layout.cc checks both).
#if defined(RF_GPU_CUDA)
constexpr int kStates = 2;
__device__ __forceinline__ int StateOf(int m, int /*c*/) { return (m >> 3) & 1; }
#else
constexpr int kStates = mma::kAPairs;
__device__ __forceinline__ int StateOf(int /*m*/, int c) { return (c % (2 * mma::kAPairs)) / 2; }
#endif

// Grid: x = token tiles, y = 128-row tiles of all parts (kernels/gemm_parts.h),
// z = K splits of spans_per_split spans.
template <GgmlType T, int BN, int kS, int kXBufs>
__global__ void __launch_bounds__(kThreads, BlocksPerSm(BN))
    GemmNarrowRegKernel(const GemmParts parts, int64_t cols, int64_t row_bytes, const float* __restrict__ x, int n,
                        int spans_per_split, bool accumulate) {
  static_assert(kS >= 2 && (kXBufs == 1 || kXBufs == 2));
  if constexpr (!kBuildMatrixCoreKernels) {  // never launched on this target (kernels/mma_amd.h)
    __builtin_trap();
    return;
  }
  constexpr int kSpan = SpanBytes(T), kSlot = SlotBytes(T), kChunks16 = kSlot / 16;
  constexpr int kWaves = kThreads / kWaveSize;
  constexpr int kWavesR = 4, kWaveRows = kBM / kWavesR, kFR = kWaveRows / 16;
  constexpr int kWavesT0 = BN / 32 > 1 ? BN / 32 : 1;
  constexpr int kWavesT = kWavesT0 < kWaves / kWavesR ? kWavesT0 : kWaves / kWavesR;
  constexpr int kWaveToks = BN / kWavesT, kFT = kWaveToks / 16;
  constexpr int kGroupsK = kWaves / (kWavesR * kWavesT);
  constexpr int kCS = ChunkSteps(BN), kCPS = 4 / kCS, kLdX = XLd(BN);
  constexpr int kStepsPerGroup = kCS / kGroupsK;
  static_assert(kWaves % (kWavesR * kWavesT) == 0 && kWaveToks % 16 == 0 && kFT >= 1);
  static_assert(kStepsPerGroup >= 1 && kCS % kGroupsK == 0);
  static_assert(kGroupsK == 1 || RedBytes(BN) >= sizeof(float) * (kGroupsK - 1) * kBM * BN);
  constexpr int kXPer = BN * kCS * 16 / kThreads;  // float4 activation loads per thread per chunk
  static_assert(kXPer >= 1 && BN * kCS * 16 % kThreads == 0 && kXPer <= 32);
  // Activations are loaded one chunk ahead (in registers) where the register
  // budget allows: 48 registers for accumulators and activations at two blocks
  // per SM (BN <= 64; more spills), anything at one (BN = 128, 255 registers).
  constexpr bool kPrefetchX = BN > 64 || kFR * kFT * 16 * 16 / kWaveSize + 4 * kXPer <= 48;
  constexpr int kCopies = (kBM * kChunks16 + kThreads - 1) / kThreads;

  // kXBufs activation tiles [token][kLdX] (f16, permuted k), then kS span stages [row][slot].
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* const xtile = reinterpret_cast<__half*>(smem_raw);
  uint8_t* const raw = smem_raw + kXBufs * XTileBytes(BN);

  const int t = threadIdx.x, wave = t / kWaveSize;
  const int tok0 = blockIdx.x * BN;
  const GemmPart part = PartOfTile(parts, static_cast<int>(blockIdx.y), kBM);
  const uint8_t* __restrict__ const w = part.w;
  float* const y = part.y;
  const int64_t rows = part.rows, row0 = part.row0;
  const int64_t n_spans = cols / 256;
  const int64_t span_begin = static_cast<int64_t>(blockIdx.z) * spans_per_split;
  const int64_t span_end = span_begin + spans_per_split < n_spans ? span_begin + spans_per_split : n_spans;
  const uint8_t* const w_end = w + rows * row_bytes;

  // Span kb of the block's rows into stage buf: the 16-byte chunks overlapping
  // [row start + kb * kSpan, + kSpan), chunk c of row r at slot byte 16 c.
  auto copy_span = [&](int64_t kb, int buf) {
    uint8_t* const dst = raw + buf * (kBM * kSlot);
    // Not unrolled: hoisted per-copy addresses would cost ~4 registers each.
#pragma unroll 1
    for (int j = 0; j < kCopies; ++j) {
      const int i = t + j * kThreads;
      const int r = i / kChunks16, c = i % kChunks16;
      if (i >= kBM * kChunks16 || row0 + r >= rows) continue;
      const int64_t start = (row0 + r) * row_bytes + kb * kSpan;
      const int64_t first = start & ~int64_t{15};
      if (first + 16 * c >= start + kSpan) continue;  // past the span's last chunk
      const uint8_t* src = w + first + 16 * c;
      uint8_t* d = dst + r * kSlot + 16 * c;
      if (src + 16 <= w_end) {
        AsyncCopy16(d, src);
      } else {  // the matrix's last chunk, cut short: every type's bytes come in pairs
        for (int b = 0; src + b < w_end; b += 2) {
          *reinterpret_cast<uint16_t*>(d + b) = *reinterpret_cast<const uint16_t*>(src + b);
        }
      }
    }
  };

  // Activations of chunk ci (steps kCS * ci .. of K) in registers, one chunk ahead.
  float4 xr[kXPer];
  uint32_t xmask = 0;  // bit i: xr[i] holds real activations
  auto load_x = [&](int64_t ci) {
    const int64_t k0 = ci * (kCS * 64);
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads, tok = tok0 + idx / (kCS * 16);
      const int64_t k = k0 + (idx % (kCS * 16)) * 4;
      const bool ok = tok < n;
      // Unconditional load (an invalid chunk reads x[0..3]); zeroed when stored.
      xr[i] = *reinterpret_cast<const float4*>(x + (ok ? static_cast<int64_t>(tok) * cols + k : 0));
      xmask = ok ? xmask | (1u << i) : xmask & ~(1u << i);
    }
  };
  // Into tile buf in the permuted order: physical k 4a..4a+3 of a step are
  // logical columns 32 (a % 2) + 8 (a / 8) + 2 ((a % 8) / 2) + {0, 1, 16, 17}.
  auto store_x = [&](int buf) {
    __half* const xs = xtile + buf * (BN * kLdX);
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads, tok = idx / (kCS * 16), c4 = idx % (kCS * 16);
      const int sl = c4 / 16, a = c4 % 16;
      const int col = sl * 64 + 32 * (a % 2) + 8 * (a / 8) + 2 * ((a % 8) / 2);
      const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const float4 v = (xmask >> i) & 1u ? xr[i] : z;
      uint32_t* const p = reinterpret_cast<uint32_t*>(xs + tok * kLdX + col);
      p[0] = Half2Bits(__floats2half2_rn(v.x, v.y));
      p[8] = Half2Bits(__floats2half2_rn(v.z, v.w));  // 16 halves on
    }
  };

  const int wrr = (wave % kWavesR) * kWaveRows;
  const int wt = (wave / kWavesR % kWavesT) * kWaveToks;
  const int kg = wave / (kWavesR * kWavesT);
  mma::FragC acc[kFR][kFT];
#pragma unroll
  for (int j = 0; j < kFR; ++j)
#pragma unroll
    for (int i = 0; i < kFT; ++i) mma::Zero(acc[j][i]);

  // This lane's rows' slot offsets are computed per use (Q6_K: the span's
  // 2-byte misalignment, which depends on the row).
  auto row_slot = [&](const uint8_t* stage, int64_t span, int r) -> const uint8_t* {
    const uint8_t* p = stage + r * kSlot;
    if constexpr (SpanBytes(T) % 16 != 0) {  // Q6_K's 210-byte spans: 2-byte aligned
      const uint32_t start = static_cast<uint32_t>(row0 + r) * static_cast<uint32_t>(row_bytes) +
                             static_cast<uint32_t>(span) * static_cast<uint32_t>(kSpan);
      p += start & 15u;
    }
    return p;
  };

  // Spans begin .. begin + kS - 2 in flight before the loop, one commit group each.
#pragma unroll
  for (int p = 0; p < kS - 1; ++p) {
    if (span_begin + p < span_end) copy_span(span_begin + p, p);
    AsyncCommit();
  }
  const int64_t c_begin = span_begin * kCPS, c_end = span_end * kCPS;
  if (kPrefetchX && c_begin < c_end) load_x(c_begin);
  int xb = 0;
  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    const int64_t span = ci / kCPS;
    const int chunk = static_cast<int>(ci % kCPS);
    const int64_t rel = span - span_begin;
    if (chunk == 0) AsyncWait<kS - 2>();  // this thread's copies of span rel are done
    if constexpr (!kPrefetchX) load_x(ci);
    store_x(xb);
    // After the barrier: every thread's copies of span rel and its chunk of
    // activations are visible; every thread finished reading span rel - 1's
    // stage (reused by the copy below) and the other activation tile.
    __syncthreads();
    if (chunk == 0) {
      if (rel + kS - 1 < span_end - span_begin) copy_span(span + kS - 1, static_cast<int>((rel + kS - 1) % kS));
      AsyncCommit();
    }
    if (kPrefetchX && ci + 1 < c_end) load_x(ci + 1);
    const uint8_t* const stage = raw + static_cast<int>(rel % kS) * (kBM * kSlot);
    const __half* const xs = xtile + xb * (BN * kLdX);
#pragma unroll 1
    for (int ss = 0; ss < kStepsPerGroup; ++ss) {
      const int sl = kg * kStepsPerGroup + ss;  // step within the chunk
      const int st = chunk * kCS + sl;          // step within the span
      // The bytes of this lane's rows, loaded once per step: rs[j][StateOf(m, c)]
      // serves pair (m, c) of row fragment j.
      RowStep<T> rs[kFR][kStates];
#pragma unroll
      for (int j = 0; j < kFR; ++j)
#pragma unroll
        for (int h = 0; h < kStates; ++h) {
          const mma_layout::Coord mk = mma::APairCoord(h);
          rs[j][h].Load(row_slot(stage, span, wrr + 16 * j + mk.row), st, (mk.col >> 1) & 3);
        }
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        mma::FragB b[kFT];
#pragma unroll
        for (int i = 0; i < kFT; ++i) mma::LoadB(b[i], xs + (wt + 16 * i) * kLdX + sl * 64 + 16 * f, kLdX);
#pragma unroll
        for (int j = 0; j < kFR; ++j) {
          mma::FragA a;
          mma::FillA(a, [&](int m, int c) { return rs[j][StateOf(m, c)].Pair(f, c); });
#pragma unroll
          for (int i = 0; i < kFT; ++i) mma::Mma(acc[j][i], a, b[i]);
        }
      }
    }
    if constexpr (kXBufs == 1) __syncthreads();  // before the next chunk overwrites the tile
    xb = (xb + 1) % kXBufs;
  }
  AsyncWaitAll();  // no copy may outlive the block (only empty groups remain)

  // K groups 1.. leave their partial sums in shared memory, [group - 1][row][token];
  // group 0 adds them. Lane l of wave w holds the same elements as lane l of
  // wave w % (kWavesR * kWavesT).
  if constexpr (kGroupsK > 1) {
    float* const red = reinterpret_cast<float*>(smem_raw);
    __syncthreads();
    if (kg > 0) {
#pragma unroll
      for (int j = 0; j < kFR; ++j)
#pragma unroll
        for (int i = 0; i < kFT; ++i)
          mma::ForEachAcc(acc[j][i], [&](int m, int c, float v) {
            red[((kg - 1) * kBM + wrr + 16 * j + m) * BN + wt + 16 * i + c] = v;
          });
    }
    __syncthreads();
    if (kg > 0) return;
  }
  // acc[j][i] element (m, c) is y[token tok0+wt+16i+c][row row0+wrr+16j+m].
#pragma unroll
  for (int j = 0; j < kFR; ++j) {
#pragma unroll
    for (int i = 0; i < kFT; ++i) {
      mma::ForEachAcc(acc[j][i], [&](int m, int c, float v) {
        if constexpr (kGroupsK > 1) {
          const float* const red = reinterpret_cast<const float*>(smem_raw);
#pragma unroll
          for (int g = 1; g < kGroupsK; ++g) v += red[((g - 1) * kBM + wrr + 16 * j + m) * BN + wt + 16 * i + c];
        }
        const int tok = tok0 + wt + 16 * i + c;
        const int64_t r = row0 + wrr + 16 * j + m;
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

template <GgmlType T, int BN>
void LaunchTile(const GemmParts& parts, int64_t cols, const float* x, int n, int blocks_per_sm, int forced_splits,
                int sm_count, Stream s) {
  constexpr Plan kPlan = PlanFor(T, BN);
  if constexpr (kPlan.stages > 0) {
    constexpr auto kKernel = &GemmNarrowRegKernel<T, BN, kPlan.stages, kPlan.xbufs>;
    constexpr size_t kSmem = SmemBytes(T, BN, kPlan.stages, kPlan.xbufs);
    const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
    const unsigned tok_tiles = Blocks(n, BN), row_tiles = static_cast<unsigned>(parts.tiles);
    const int64_t n_spans = cols / 256;
    // Split K so that the grid is one resident wave (BlocksPerSm blocks per
    // SM), as v4 (docs/gpu.md "GEMM"), or covers the chip blocks_per_sm times
    // when forced; at least 2 spans per split. The row tiles of all parts
    // count together: a group needs fewer splits than its parts alone.
    const int64_t tiles = static_cast<int64_t>(tok_tiles) * row_tiles;
    int64_t splits = 1;
    if (forced_splits > 0) {
      splits = forced_splits;
    } else if (blocks_per_sm > 0) {
      const int64_t target = static_cast<int64_t>(sm_count) * blocks_per_sm;
      splits = tiles >= target ? 1 : (target + tiles - 1) / tiles;
    } else {
      splits = BlocksPerSm(BN) * static_cast<int64_t>(sm_count) / tiles;
    }
    if (forced_splits <= 0) splits = std::min(splits, n_spans / 2);
    splits = std::max<int64_t>(1, std::min(splits, n_spans));
    const int64_t per = (n_spans + splits - 1) / splits;
    splits = (n_spans + per - 1) / per;
    if (splits > 1) LaunchZeroParts(parts, n, s);
    static const bool smem_ok = [] {
#if defined(RF_GPU_CUDA)
      const auto attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
#else
      const auto attr = hipFuncAttributeMaxDynamicSharedMemorySize;
#endif
      return hipFuncSetAttribute(reinterpret_cast<const void*>(kKernel), attr, static_cast<int>(kSmem)) ==
             hipSuccess;
    }();
    (void)smem_ok;  // a failure shows as the launch's error
    const dim3 grid(tok_tiles, row_tiles, static_cast<unsigned>(splits));
    kKernel<<<grid, kThreads, kSmem, ToStream(s)>>>(parts, cols, row_bytes, x, n, static_cast<int>(per), splits > 1);
  } else {
    (void)parts, (void)cols, (void)x, (void)n, (void)blocks_per_sm, (void)forced_splits, (void)sm_count, (void)s;
  }
}

template <GgmlType T>
void LaunchType(const GemmParts& parts, int64_t cols, const float* x, int n, int bn, int blocks_per_sm,
                int forced_splits, int sm_count, Stream s) {
  switch (bn) {
    case 16: return LaunchTile<T, 16>(parts, cols, x, n, blocks_per_sm, forced_splits, sm_count, s);
    case 32: return LaunchTile<T, 32>(parts, cols, x, n, blocks_per_sm, forced_splits, sm_count, s);
    case 64: return LaunchTile<T, 64>(parts, cols, x, n, blocks_per_sm, forced_splits, sm_count, s);
    case 128: return LaunchTile<T, 128>(parts, cols, x, n, blocks_per_sm, forced_splits, sm_count, s);
    default: break;
  }
}

}  // namespace

bool NarrowRegFits(GgmlType t, int bn) {
  if (t != GgmlType::Q4_K && t != GgmlType::Q6_K && t != GgmlType::Q8_0) return false;
  if (bn != 16 && bn != 32 && bn != 64 && bn != 128) return false;
  return PlanFor(t, bn).stages > 0;
}

void LaunchNarrowReg(GgmlType t, const GemmParts& parts, int64_t cols, const float* x, int n, int bn,
                     int blocks_per_sm, int forced_splits, int sm_count, Stream s) {
  const int b = blocks_per_sm, f = forced_splits, c = sm_count;
  switch (t) {
    case GgmlType::Q4_K: return LaunchType<GgmlType::Q4_K>(parts, cols, x, n, bn, b, f, c, s);
    case GgmlType::Q6_K: return LaunchType<GgmlType::Q6_K>(parts, cols, x, n, bn, b, f, c, s);
    case GgmlType::Q8_0: return LaunchType<GgmlType::Q8_0>(parts, cols, x, n, bn, b, f, c, s);
    default: break;
  }
}

}  // namespace rocmforge::gpu
