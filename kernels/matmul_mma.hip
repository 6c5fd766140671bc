// Matrix-core GEMM for n > kSmallBatchMax tokens (prefill and batched decode):
// y[n][rows] = x[n][cols] . W^T, f16 operands, float accumulation, written only
// through the mma:: interface of gpu_runtime.h (mma.sync on NVIDIA, MFMA on AMD).
//
// A block owns 128 weight rows x BN tokens (BN = 32, 64 or 128, chosen by n) and
// walks K in steps of 64. Per step each of its 256 threads decodes two 16-value
// runs of one weight row with the scales loaded once (whole-block dequant, not 8
// values at a time, in f16 arithmetic) and converts a slice of the activation
// tile to f16. Weight bytes are loaded into registers 1-4 steps ahead of their
// use (PrefetchSteps) and activations one step ahead, so memory latency hides
// behind the MMAs; with two shared buffers (NVIDIA) one barrier per step
// suffices and waves decode the next step while others still multiply. The
// 128-token tile on NVIDIA stages activations through shared memory with async
// copies instead (kStageX), which frees the registers for two blocks per SM.
// Results go from the accumulators straight to y (mma::ForEachAcc). When rows x
// tokens give too few blocks to fill the chip (batched decode, short matrices)
// K is split over blockIdx.z and the partial sums meet in y through float
// atomicAdd after a memset (summation order, and so the last bits, may vary
// between runs in that case).
//
// Measured limits (H100, docs/gpu.md "GEMM"): both regimes are bound by the
// L1/TEX unit: scattered 16-byte weight loads (36 bytes per row and step for
// Q4_K) and every weight passing through shared memory.
//
// Batched decode (n <= 128) of Q4_K / Q6_K / Q8_0 takes the narrow path
// instead where it applies (MatMulMmaNarrowTakes): whole 256-value spans of the
// block's rows are copied into shared memory by coalesced async copies, 2-3
// spans ahead. By default the v5 kernel (kernels/matmul_mma_narrow.hip) decodes
// them straight into A-operand registers; GemmConfig::narrow = 2 selects v4
// below (n <= 64), which decodes with the same WeightRuns decoders into an f16
// tile: 16-, 32- or 64-token tiles, the waves splitting K rather than tokens.
//
// Every kernel here except v4 takes a parts table (kernels/gemm_parts.h): the
// matmuls of a layer that read the same activations (Q/K/V, gate/up) run as
// one launch (LaunchMatMulMmaGroup) with one K-split plan over all their row
// tiles; a K split zeroes every part's y with one kernel (ZeroPartsKernel).
// H100, Llama-3-8B Q4_K: Q/K/V 1.6x faster grouped at 16-32 tokens, 1.24-1.37x
// at 96-128, gate/up 1.03-1.16x; the 32-decode step 9.69 -> 8.84 ms.
#include <algorithm>

#include "kernels/gemm_parts.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/act_quant_launch.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

// The v5 narrow path (kernels/matmul_mma_narrow.hip): whether it has a plan for
// this type and token tile (16, 32, 64, 128), and its launcher.
bool NarrowRegFits(GgmlType t, int bn);
void LaunchNarrowReg(GgmlType t, const GemmParts& parts, int64_t cols, const float* x, int n, int bn,
                     int blocks_per_sm, int forced_splits, int sm_count, Stream s);

namespace {

constexpr int kBM = 128;       // weight rows per block
constexpr int kBK = 64;        // K per step
constexpr int kThreads = 256;  // two threads per weight row
constexpr int kLd = kBK + 8;   // halves per shared row: 144 bytes, so the 8 rows an
                               // ldmatrix phase reads start in distinct bank groups
// Shared-memory buffers: two on NVIDIA (one barrier per step); one on AMD,
// where a workgroup gets at most 64 KiB of LDS and two 128-token stages need 72.
#if defined(RF_GPU_CUDA)
constexpr int kStages = 2;
#else
constexpr int kStages = 1;
#endif
template <int BN>
__host__ __device__ constexpr int StageHalves() {
  return (kBM + BN) * kLd;
}
// Weight prefetch depth in steps, and the blocks per SM the register budget is
// cut for: small token tiles are memory bound (more bytes in flight), large
// ones keep every register for accumulators.
// (Q6_K moves 105 bytes per row and step, and needs 16 registers a step.)
constexpr int PrefetchSteps(GgmlType t, int bn) {
  if (t == GgmlType::Q6_K) return bn <= 32 ? 2 : 1;
  return bn <= 32 ? 4 : bn <= 64 ? 2 : 1;
}
constexpr int MinBlocks(int bn) { return bn <= 64 ? 2 : 1; }
// kStageX: activations go global -> shared (float staging, cp.async) instead of
// through registers, freeing 4 * BN / 16 registers a thread for a second block per SM.
template <int BN, bool kStageX>
constexpr size_t SmemBytes() {
  return sizeof(__half) * static_cast<size_t>(kStages) * StageHalves<BN>() +
         (kStageX ? sizeof(float) * BN * kBK : 0);
}

__device__ __forceinline__ uint32_t PackHalf2(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ uint32_t Half2Bits(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }
__device__ __forceinline__ __half2 BitsHalf2(uint32_t b) { return *reinterpret_cast<const __half2*>(&b); }
// Bytes of w picked by the __byte_perm selector `sel` as half2(1024 + v0, 1024 + v1):
// a byte placed under the exponent of 1024.0 (0x6400) is its mantissa, exactly.
__device__ __forceinline__ __half2 Bytes1024(uint32_t w, uint32_t sel) {
  return BitsHalf2(__byte_perm(w, 0x64646464u, sel));
}
// (v - off) * d + c for the four bytes v (< 256) of w, as the half2 words (v0,v1), (v2,v3).
// off is given as 1024 + offset; v - offset is a small integer, exact in half, so the
// only rounding is the fused multiply-add's. Two half2 instructions per two values
// instead of a convert, a multiply and a pack per value in float.
__device__ __forceinline__ void DecodeBytes4(uint32_t w, __half2 off, __half2 d, __half2 c, uint32_t* out) {
  out[0] = Half2Bits(__hfma2(__hsub2(Bytes1024(w, 0x5140u), off), d, c));
  out[1] = Half2Bits(__hfma2(__hsub2(Bytes1024(w, 0x7362u), off), d, c));
}
constexpr uint32_t kOff0 = 0x64006400u;    // 1024: unsigned values as they are
constexpr uint32_t kOff8 = 0x64086408u;    // 1032: Q4_0's v - 8
constexpr uint32_t kOff32 = 0x64206420u;   // 1056: Q6_K's v - 32
constexpr uint32_t kOff128 = 0x64806480u;  // 1152: int8 stored with its sign bit flipped

// One thread's share of a weight row in a K step starting at k0 (k0 % 64 == 0):
// half s (0 or 1) decodes run A = elements k0+16s .. +15 and run B = elements
// k0+32+16s .. +15. Load() issues the global loads only (so they fly while the
// previous step computes); Decode() turns them into 32 f16 values: out[0..1]
// run A, out[2..3] run B.
// A run past the row's end (or of a row past the matrix) decodes to 0. Loads
// are never conditional: an invalid run reads valid bytes (its row is clamped
// to row 0, its block to one inside the row) and is zeroed when decoded, so no
// select waits for a load right after issuing it.
template <GgmlType T>
struct WeightRuns;

template <>
struct WeightRuns<GgmlType::F16> {
  uint4 a0, a1, b0, b1;
  bool va, vb;
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t cols, bool ok) {
    const uint4* base = reinterpret_cast<const uint4*>(row);  // rows hold >= 16 values
    const uint4* p = base + (k0 + 16 * s) / 8;
    va = ok && k0 + 16 * s + 16 <= cols;
    vb = ok && k0 + 32 + 16 * s + 16 <= cols;
    const uint4* pa = va ? p : base;
    const uint4* pb = vb ? p + 4 : base;
    a0 = pa[0];
    a1 = pa[1];
    b0 = pb[0];
    b1 = pb[1];
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    const uint4 z = make_uint4(0, 0, 0, 0);
    out[0] = va ? a0 : z;
    out[1] = va ? a1 : z;
    out[2] = vb ? b0 : z;
    out[3] = vb ? b1 : z;
  }
};

template <>
struct WeightRuns<GgmlType::BF16> {
  WeightRuns<GgmlType::F16> raw;
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t cols, bool ok) {
    raw.Load(row, k0, s, cols, ok);
  }
  __device__ static uint32_t Bf16PairToHalf2(uint32_t w) {
    return PackHalf2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
  __device__ static uint4 Convert(uint4 v) {
    return make_uint4(Bf16PairToHalf2(v.x), Bf16PairToHalf2(v.y), Bf16PairToHalf2(v.z),
                      Bf16PairToHalf2(v.w));
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    const uint4 z = make_uint4(0, 0, 0, 0);
    out[0] = raw.va ? Convert(raw.a0) : z;
    out[1] = raw.va ? Convert(raw.a1) : z;
    out[2] = raw.vb ? Convert(raw.b0) : z;
    out[3] = raw.vb ? Convert(raw.b1) : z;
  }
};

// Q8_0 / Q4_0: run A lies in block k0/32, run B in the next block.
template <>
struct WeightRuns<GgmlType::Q8_0> {
  uint32_t qa[4], qb[4];
  uint16_t da, db;
  bool va, vb;
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t cols, bool ok) {
    // Block k0/32 is inside the row (cols % 32 == 0); the next one may not be.
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + k0 / 32;
    va = ok;
    vb = ok && k0 + 64 <= cols;
    const BlockQ8_0* bb = vb ? b + 1 : b;
    LoadWords<4>(reinterpret_cast<const uint8_t*>(b->qs) + 16 * s, qa);
    LoadWords<4>(reinterpret_cast<const uint8_t*>(bb->qs) + 16 * s, qb);
    da = b->d;
    db = bb->d;
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    uint32_t h[16];
    const __half2 off = BitsHalf2(kOff128), zero = BitsHalf2(0);
    const uint32_t ma = va ? 0x10001u : 0u, mb = vb ? 0x10001u : 0u;  // (d, d), or 0 for an invalid run
    const __half2 fa = BitsHalf2(da * ma), fb = BitsHalf2(db * mb);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      DecodeBytes4(qa[i] ^ 0x80808080u, off, fa, zero, h + 2 * i);
      DecodeBytes4(qb[i] ^ 0x80808080u, off, fb, zero, h + 8 + 2 * i);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = make_uint4(h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]);
  }
};

template <>
struct WeightRuns<GgmlType::Q4_0> {
  uint32_t qa[4], qb[4];
  uint16_t da, db;
  bool va, vb;
  int shift;  // run [16s, 16s+16) of a block: low nibbles (s = 0) or high (s = 1) of its 16 bytes
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t cols, bool ok) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + k0 / 32;
    shift = 4 * s;
    va = ok;
    vb = ok && k0 + 64 <= cols;
    const BlockQ4_0* bb = vb ? b + 1 : b;
    LoadWords<4>(b->qs, qa);
    LoadWords<4>(bb->qs, qb);
    da = b->d;
    db = bb->d;
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    uint32_t h[16];
    const __half2 off = BitsHalf2(kOff8), zero = BitsHalf2(0);
    const uint32_t ma = va ? 0x10001u : 0u, mb = vb ? 0x10001u : 0u;  // (d, d), or 0 for an invalid run
    const __half2 fa = BitsHalf2(da * ma), fb = BitsHalf2(db * mb);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      DecodeBytes4((qa[i] >> shift) & 0x0F0F0F0Fu, off, fa, zero, h + 2 * i);
      DecodeBytes4((qb[i] >> shift) & 0x0F0F0F0Fu, off, fb, zero, h + 8 + 2 * i);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = make_uint4(h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]);
  }
};

// Q4_K / Q5_K: a 64-value step is sub-blocks 2p and 2p+1 of one super-block,
// which share 32 quant bytes (low nibbles, high nibbles): half s takes bytes
// 16s..16s+15, i.e. values 16s.. of both sub-blocks, with one 16-byte load.
template <GgmlType T>
struct WeightRunsK {
  static_assert(T == GgmlType::Q4_K || T == GgmlType::Q5_K);
  using Block = std::conditional_t<T == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;
  uint4 q, h;  // quant bytes; Q5_K: high-bit bytes (bit j = sub-block j)
  uint32_t dd, w0, w1, w2;
  int pair;
  bool valid;
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t /*cols*/, bool ok) {
    // K-quant rows are whole super-blocks, so only the row can be out of range.
    const Block* b = reinterpret_cast<const Block*>(row) + k0 / 256;
    pair = static_cast<int>((k0 % 256) / 64);
    valid = ok;
    const uint4 head = *reinterpret_cast<const uint4*>(b);  // d, dmin, 12 scale bytes
    dd = head.x;
    w0 = head.y;
    w1 = head.z;
    w2 = head.w;
    q = *reinterpret_cast<const uint4*>(b->qs + pair * 32 + 16 * s);
    if constexpr (T == GgmlType::Q5_K) h = *reinterpret_cast<const uint4*>(b->qh + 16 * s);
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    const uint32_t dmins = valid ? dd : 0u;  // d = dmin = 0 zeroes a row past the matrix
    int sc0, m0, sc1, m1;
    ScaleMinK4Words(2 * pair, w0, w1, w2, &sc0, &m0);
    ScaleMinK4Words(2 * pair + 1, w0, w1, w2, &sc1, &m1);
    const float d = HalfBitsToFloat(static_cast<uint16_t>(dmins & 0xffff));
    const float dmin = HalfBitsToFloat(static_cast<uint16_t>(dmins >> 16));
    const __half2 off = BitsHalf2(kOff0);
    const __half2 da = __float2half2_rn(d * sc0), ca = __float2half2_rn(-dmin * m0);
    const __half2 db = __float2half2_rn(d * sc1), cb = __float2half2_rn(-dmin * m1);
    const uint32_t qw[4] = {q.x, q.y, q.z, q.w};
    const uint32_t hw[4] = {h.x, h.y, h.z, h.w};
    uint32_t o[16];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      uint32_t lo = qw[i] & 0x0F0F0F0Fu, hi = (qw[i] >> 4) & 0x0F0F0F0Fu;
      if constexpr (T == GgmlType::Q5_K) {
        lo |= ((hw[i] >> (2 * pair)) & 0x01010101u) << 4;
        hi |= ((hw[i] >> (2 * pair + 1)) & 0x01010101u) << 4;
      }
      DecodeBytes4(lo, off, da, ca, o + 2 * i);
      DecodeBytes4(hi, off, db, cb, o + 8 + 2 * i);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = make_uint4(o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]);
  }
};
template <>
struct WeightRuns<GgmlType::Q4_K> : WeightRunsK<GgmlType::Q4_K> {};
template <>
struct WeightRuns<GgmlType::Q5_K> : WeightRunsK<GgmlType::Q5_K> {};

// Q6_K: a 64-value step is quarters 2j and 2j+1 of one half of a super-block;
// half s takes l = 16s..16s+15 of both: 16 low-bit bytes of each quarter, the
// 16 high-bit bytes they share, and one int8 scale per run. The 210-byte
// blocks are only 2-byte aligned: aligned word loads realigned (LoadWords).
template <>
struct WeightRuns<GgmlType::Q6_K> {
  uint32_t la[4], lb[4], hq[4];
  int8_t sa, sb;
  uint16_t d;
  int step;  // 0..3 within the super-block
  bool valid;
  __device__ void Load(const uint8_t* row, int64_t k0, int s, int64_t /*cols*/, bool ok) {
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + k0 / 256;
    step = static_cast<int>((k0 % 256) / 64);
    const int half = step / 2, qa = (step % 2) * 2;
    valid = ok;
    LoadWords<4>(b->ql + half * 64 + 16 * s, la);
    LoadWords<4>(b->ql + half * 64 + 32 + 16 * s, lb);
    LoadWords<4>(b->qh + half * 32 + 16 * s, hq);
    sa = b->scales[half * 8 + qa * 2 + s];
    sb = b->scales[half * 8 + (qa + 1) * 2 + s];
    d = b->d;
  }
  __device__ void Decode(uint4 (&out)[4]) const {
    const int qa = (step % 2) * 2, shift = (step % 2) * 4;
    const float fd = valid ? H2F(d) : 0.0f;
    const __half2 off = BitsHalf2(kOff32), zero = BitsHalf2(0);
    const __half2 da = __float2half2_rn(fd * sa), db = __float2half2_rn(fd * sb);
    uint32_t o[16];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t va = ((la[i] >> shift) & 0x0F0F0F0Fu) | (((hq[i] >> (2 * qa)) & 0x03030303u) << 4);
      const uint32_t vb = ((lb[i] >> shift) & 0x0F0F0F0Fu) | (((hq[i] >> (2 * qa + 2)) & 0x03030303u) << 4);
      DecodeBytes4(va, off, da, zero, o + 2 * i);
      DecodeBytes4(vb, off, db, zero, o + 8 + 2 * i);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = make_uint4(o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]);
  }
};

// Grid: x = token tiles (fastest, so blocks running together share a weight
// tile through L2), y = 128-row weight tiles of all parts (kernels/
// gemm_parts.h), z = K splits of steps_per_split steps each. accumulate:
// atomicAdd into y (zeroed by the launcher) instead of storing.
template <GgmlType T, int BN, int kP, bool kStageX>
__global__ void __launch_bounds__(kThreads, kStageX ? 2 : MinBlocks(BN))
    GemmMmaKernel(const GemmParts parts, int64_t cols, int64_t row_bytes, const float* __restrict__ x, int n,
                  int steps_per_split, bool accumulate) {
  if constexpr (!kBuildMatrixCoreKernels) {  // never launched on this target (kernels/mma_amd.h)
    __builtin_trap();
    return;
  }
  // Waves split 2 ways over tokens and kWaves/2 ways over rows; each wave owns
  // kFT x kFR 16x16 accumulator tiles (more row tiles on 64-wide waves).
  constexpr int kWaves = kThreads / kWaveSize;
  constexpr int kWavesT = 2, kWavesR = kWaves / kWavesT;
  constexpr int kWaveRows = kBM / kWavesR, kWaveToks = BN / kWavesT;
  constexpr int kFR = kWaveRows / 16, kFT = kWaveToks / 16;
  static_assert(kFR >= 1 && kFT >= 1 && kWaveRows % 16 == 0 && kWaveToks % 16 == 0);
  constexpr int kXPer = BN * (kBK / 4) / kThreads;  // float4 activation loads per thread per step
  static_assert(kXPer >= 1 && BN * (kBK / 4) % kThreads == 0);

  // kStages buffers of [weight row][k] then [token][k] halves (dynamic shared memory).
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* const smem = reinterpret_cast<__half*>(smem_raw);

  const int t = threadIdx.x, wave = t / kWaveSize;
  const int tok0 = blockIdx.x * BN;
  const GemmPart part = PartOfTile(parts, static_cast<int>(blockIdx.y), kBM);
  const uint8_t* __restrict__ const w = part.w;
  float* const y = part.y;
  const int64_t rows = part.rows, row0 = part.row0;
  const int64_t n_steps = (cols + kBK - 1) / kBK;
  const int64_t step_begin = static_cast<int64_t>(blockIdx.z) * steps_per_split;
  const int64_t step_end = step_begin + steps_per_split < n_steps ? step_begin + steps_per_split : n_steps;

  const int lr = t / 2, ls = t % 2;  // weight loader: tile row, run half
  const bool row_ok = row0 + lr < rows;
  const uint8_t* wrow = w + (row_ok ? row0 + lr : 0) * row_bytes;

  // Weight bytes run kP steps ahead of the MMAs in a ring of registers (the
  // batched-decode tiles do little arithmetic per step, so one step of lead
  // would leave a memory latency exposed per step); activations, read from L2,
  // run one step ahead.
  WeightRuns<T> wr[kP];
  float4 xr[kStageX ? 1 : kXPer];
  uint32_t xmask = 0;  // bit i: xr[i] holds real activations
  static_assert(kXPer <= 32);
  // Float staging for kStageX: each thread copies and later converts its own
  // 16-byte chunks, so its own wait is the only synchronisation needed.
  float4* const xstage = reinterpret_cast<float4*>(smem + kStages * StageHalves<BN>());
  auto load_x = [&](int64_t step) {
    const int64_t k0 = step * kBK;
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads, tok = tok0 + idx / 16;
      const int64_t k = k0 + (idx % 16) * 4;
      const bool ok = tok < n && k < cols;
      const float* src = x + (ok ? static_cast<int64_t>(tok) * cols + k : 0);
      if constexpr (kStageX) {
        if (ok) {
          AsyncCopy16(xstage + idx, src);
        } else {
          xstage[idx] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
      } else {
        // Unconditional load (an invalid chunk reads x[0..3]); zeroed when stored.
        xr[i] = *reinterpret_cast<const float4*>(src);
        xmask = ok ? xmask | (1u << i) : xmask & ~(1u << i);
      }
    }
    if constexpr (kStageX) AsyncCommit();
  };
  auto store = [&](int buf, const WeightRuns<T>& runs) {
    __half* const ws = smem + buf * StageHalves<BN>();
    __half* const xs = ws + kBM * kLd;
    uint4 v[4];
    runs.Decode(v);
    uint4* dst = reinterpret_cast<uint4*>(ws + lr * kLd);
    dst[2 * ls] = v[0];
    dst[2 * ls + 1] = v[1];
    dst[4 + 2 * ls] = v[2];
    dst[4 + 2 * ls + 1] = v[3];
    if constexpr (kStageX) AsyncWaitAll();
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads;
      const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const float4 v = kStageX ? xstage[idx] : ((xmask >> i) & 1u ? xr[kStageX ? 0 : i] : z);
      *reinterpret_cast<uint2*>(xs + (idx / 16) * kLd + (idx % 16) * 4) =
          make_uint2(PackHalf2(v.x, v.y), PackHalf2(v.z, v.w));
    }
  };

  const int wt = (wave % kWavesT) * kWaveToks, wrr = (wave / kWavesT) * kWaveRows;
  mma::FragC acc[kFT][kFR];
#pragma unroll
  for (int i = 0; i < kFT; ++i)
#pragma unroll
    for (int j = 0; j < kFR; ++j) mma::Zero(acc[i][j]);

  // Ring slot d holds step base + d. One barrier per step with two buffers: a
  // thread stores step+1 into the other buffer while slower waves still read
  // this one, which every wave finished reading before the previous barrier.
  // One buffer needs two barriers.
#pragma unroll
  for (int d = 0; d < kP; ++d) {
    if (step_begin + d < step_end) wr[d].Load(wrow, (step_begin + d) * kBK, ls, cols, row_ok);
  }
  if (step_begin < step_end) {
    load_x(step_begin);
    store(0, wr[0]);
  }
  __syncthreads();
  int cur = 0;
  for (int64_t base = step_begin; base < step_end; base += kP) {
#pragma unroll
    for (int d = 0; d < kP; ++d) {
      const int64_t step = base + d;
      if (step < step_end) {
        const bool more = step + 1 < step_end;
        // Slot d (this step) is in shared memory already: refill it kP steps ahead.
        if (step + kP < step_end) wr[d].Load(wrow, (step + kP) * kBK, ls, cols, row_ok);
        if (more) load_x(step + 1);
        const __half* const ws = smem + cur * StageHalves<BN>();
        const __half* const xs = ws + kBM * kLd;
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
          mma::FragA a[kFT];
          mma::FragB b[kFR];
#pragma unroll
          for (int i = 0; i < kFT; ++i) mma::LoadA(a[i], xs + (wt + 16 * i) * kLd + kk, kLd);
#pragma unroll
          for (int j = 0; j < kFR; ++j) mma::LoadB(b[j], ws + (wrr + 16 * j) * kLd + kk, kLd);
#pragma unroll
          for (int i = 0; i < kFT; ++i)
#pragma unroll
            for (int j = 0; j < kFR; ++j) mma::Mma(acc[i][j], a[i], b[j]);
        }
        if constexpr (kStages == 1) __syncthreads();
        if (more) {
          cur = (cur + 1) % kStages;
          store(cur, wr[(d + 1) % kP]);
        }
        __syncthreads();
      }
    }
  }

  // acc[i][j] element (m, c) is y[token tok0+wt+16i+m][row row0+wrr+16j+c].
#pragma unroll
  for (int i = 0; i < kFT; ++i) {
#pragma unroll
    for (int j = 0; j < kFR; ++j) {
      mma::ForEachAcc(acc[i][j], [&](int m, int c, float v) {
        const int tok = tok0 + wt + 16 * i + m;
        const int64_t r = row0 + wrr + 16 * j + c;
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

// ---- Narrow path (9..64 tokens, batched decode): weights staged by span.
// The per-step weight loads above are 16-byte pieces scattered over 128 rows
// (36 of every row's bytes per step for Q4_K): at n <= 64 they keep the L1/TEX
// unit busy while DRAM idles. Here a block copies whole 256-value spans of its
// 128 rows (a K-quant super-block, or 8 blocks of 32) into shared memory with
// coalesced 16-byte async copies, kS spans deep, and each 64-wide step decodes
// from there with the same WeightRuns decoders, into the same f16 tile and
// MMA loop as GemmMmaKernel. Token tiles are 16, 32 or 64.
//
// A span of row r starts at byte r * row_bytes + kb * SpanBytes, which for
// Q6_K (210-byte blocks) is only 2-byte aligned: the copy takes the 16-byte
// chunks that overlap the span and the decoder starts `off` bytes into the
// slot. The one chunk that could reach past the end of the matrix (the last
// row's last span) is copied with 2-byte loads instead.
__host__ __device__ constexpr int SpanBytes(GgmlType t) { return 256 / BlockElems(t) * BlockBytes(t); }
// Shared bytes per row and span: room for the 14-byte lead of a 2-byte aligned
// span, rounded so that rows start 32 bytes apart modulo 128 (the 16-byte
// decoder loads of a quarter-wave hit distinct banks).
__host__ __device__ constexpr int SpanSlotBytes(GgmlType t) {
  int b = SpanBytes(t) % 16 == 0 ? SpanBytes(t) : SpanBytes(t) + 14;
  b = (b + 15) / 16 * 16;
  while ((b / 16) % 4 != 2) b += 16;
  return b;
}
// Spans in flight (kS) and f16 tile buffers (kD) for a type and token tile:
// the deepest plan whose shared memory leaves room for two blocks per SM on
// NVIDIA (113 KiB each) or fits a workgroup's 64 KiB on AMD; stages 0 = none fits.
struct NarrowPlan {
  int stages;
  int dec_bufs;
};
#if defined(RF_GPU_CUDA)
constexpr size_t kNarrowSmemBudget = 113 * 1024;
#else
constexpr size_t kNarrowSmemBudget = 64 * 1024;
#endif
constexpr size_t NarrowSmemBytes(GgmlType t, int bn, int stages, int dec_bufs) {
  return sizeof(__half) * static_cast<size_t>(dec_bufs) * static_cast<size_t>((kBM + bn) * kLd) +
         static_cast<size_t>(stages) * kBM * SpanSlotBytes(t);
}
constexpr NarrowPlan PlanNarrow(GgmlType t, int bn) {
  const NarrowPlan tries[] = {{3, 2}, {2, 2}, {2, 1}};
  for (const NarrowPlan& p : tries) {
    if (NarrowSmemBytes(t, bn, p.stages, p.dec_bufs) <= kNarrowSmemBudget) return p;
  }
  return {0, 0};
}
constexpr bool NarrowType(GgmlType t) {
  return t == GgmlType::Q4_K || t == GgmlType::Q6_K || t == GgmlType::Q8_0;
}

// Grid as GemmMmaKernel; z = K splits of spans_per_split spans (cols % 256 == 0).
template <GgmlType T, int BN, int kS, int kD>
__global__ void __launch_bounds__(kThreads, 2)
    GemmNarrowKernel(const uint8_t* __restrict__ w, int64_t rows, int64_t cols, int64_t row_bytes,
                     const float* __restrict__ x, float* y, int n, int spans_per_split, bool accumulate) {
  static_assert(kS >= 2 && (kD == 1 || kD == 2));
  if constexpr (!kBuildMatrixCoreKernels) {  // never launched on this target (kernels/mma_amd.h)
    __builtin_trap();
    return;
  }
  constexpr int kSpan = SpanBytes(T), kSlot = SpanSlotBytes(T), kChunks = kSlot / 16;
  constexpr int kWaves = kThreads / kWaveSize;
  // Waves: 4 row groups of 32 rows, each wave all BN tokens; with more than 4
  // waves (wave 32) the extra waves split each step's 64 K (kGroupsK ways)
  // rather than the tokens or rows, so every weight and activation fragment is
  // read from shared memory once per block (ldmatrix traffic bounds this
  // kernel); the K groups' partial sums meet in shared memory at the end. At 64
  // tokens the accumulators of all tokens would not fit two blocks per SM:
  // there the extra waves split the tokens (kWavesT).
  constexpr int kWavesR = 4, kWavesT = BN == 64 && kWaves >= 8 ? 2 : 1;
  constexpr int kGroupsK = kWaves / (kWavesR * kWavesT);
  constexpr int kWaveRows = kBM / kWavesR, kWaveToks = BN / kWavesT;
  constexpr int kFR = kWaveRows / 16, kFT = kWaveToks / 16;
  constexpr int kKPerGroup = kBK / kGroupsK;
  static_assert(kWaves % (kWavesR * kWavesT) == 0 && kKPerGroup % 16 == 0 && kFR >= 1 && kFT >= 1 &&
                kWaveToks % 16 == 0);
  constexpr int kXPer = BN * (kBK / 4) / kThreads;  // float4 activation loads per thread per step
  static_assert(kXPer >= 1 && BN * (kBK / 4) % kThreads == 0 && kXPer <= 32);
  constexpr int kCopies = (kBM * kChunks + kThreads - 1) / kThreads;  // 16-byte copies per thread per span

  // kD f16 tiles ([weight row][k] then [token][k]), then kS raw span stages [row][slot].
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* const dec = reinterpret_cast<__half*>(smem_raw);
  uint8_t* const raw = smem_raw + sizeof(__half) * kD * StageHalves<BN>();

  const int t = threadIdx.x, wave = t / kWaveSize;
  const int tok0 = blockIdx.x * BN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t n_spans = cols / 256;
  const int64_t span_begin = static_cast<int64_t>(blockIdx.z) * spans_per_split;
  const int64_t span_end = span_begin + spans_per_split < n_spans ? span_begin + spans_per_split : n_spans;
  const int64_t step_begin = 4 * span_begin, step_end = 4 * span_end;
  const uint8_t* const w_end = w + rows * row_bytes;

  const int lr = t / 2, ls = t % 2;  // decoder: tile row, run half
  const bool row_ok = row0 + lr < rows;
  const int64_t my_row_start = (row_ok ? row0 + lr : 0) * row_bytes;

  // Span kb of the block's rows into stage buffer buf: the 16-byte chunks
  // overlapping [row start + kb * kSpan, + kSpan), chunk c of row r at slot
  // byte 16 c. Rows past the matrix are not copied (their runs decode to 0).
  auto copy_span = [&](int64_t kb, int buf) {
    uint8_t* const dst = raw + buf * (kBM * kSlot);
#pragma unroll
    for (int j = 0; j < kCopies; ++j) {
      const int i = t + j * kThreads;
      const int r = i / kChunks, c = i % kChunks;
      if (i >= kBM * kChunks || row0 + r >= rows) continue;
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

  float4 xr[kXPer];
  uint32_t xmask = 0;  // bit i: xr[i] holds real activations
  auto load_x = [&](int64_t step) {
    const int64_t k0 = step * kBK;
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads, tok = tok0 + idx / 16;
      const int64_t k = k0 + (idx % 16) * 4;  // < cols: cols is whole spans
      const bool ok = tok < n;
      // Unconditional load (an invalid chunk reads x[0..3]); zeroed when stored.
      xr[i] = *reinterpret_cast<const float4*>(x + (ok ? static_cast<int64_t>(tok) * cols + k : 0));
      xmask = ok ? xmask | (1u << i) : xmask & ~(1u << i);
    }
  };
  // Step `step`'s weights (decoded from stage sbuf) and activations into f16 tile buf.
  auto store = [&](int buf, int sbuf, int64_t step) {
    __half* const ws = dec + buf * StageHalves<BN>();
    __half* const xs = ws + kBM * kLd;
    const int64_t span = step / 4;
    const int off = kSpan % 16 == 0 ? 0 : static_cast<int>((my_row_start + span * kSpan) & 15);
    WeightRuns<T> runs;
    // The slot holds one span: the decoder sees a 256-value row starting at it.
    runs.Load(raw + sbuf * (kBM * kSlot) + lr * kSlot + off, (step % 4) * kBK, ls, 256, row_ok);
    uint4 v[4];
    runs.Decode(v);
    uint4* dst = reinterpret_cast<uint4*>(ws + lr * kLd);
    dst[2 * ls] = v[0];
    dst[2 * ls + 1] = v[1];
    dst[4 + 2 * ls] = v[2];
    dst[4 + 2 * ls + 1] = v[3];
#pragma unroll
    for (int i = 0; i < kXPer; ++i) {
      const int idx = t + i * kThreads;
      const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const float4 xv = (xmask >> i) & 1u ? xr[i] : z;
      *reinterpret_cast<uint2*>(xs + (idx / 16) * kLd + (idx % 16) * 4) =
          make_uint2(PackHalf2(xv.x, xv.y), PackHalf2(xv.z, xv.w));
    }
  };

  const int wrr = (wave % kWavesR) * kWaveRows, wt = (wave / kWavesR % kWavesT) * kWaveToks;
  const int kg = wave / (kWavesR * kWavesT);
  mma::FragC acc[kFT][kFR];
#pragma unroll
  for (int i = 0; i < kFT; ++i)
#pragma unroll
    for (int j = 0; j < kFR; ++j) mma::Zero(acc[i][j]);

  // Spans begin .. begin + kS - 2 in flight before the loop, one commit group each.
#pragma unroll
  for (int p = 0; p < kS - 1; ++p) {
    if (span_begin + p < span_end) copy_span(span_begin + p, p);
    AsyncCommit();
  }
  if (step_begin < step_end) load_x(step_begin);
  int dcur = 0;
  for (int64_t step = step_begin; step < step_end; ++step) {
    const int64_t rel = step / 4 - span_begin;  // span index within the split
    const int sbuf = static_cast<int>(rel % kS);
    if (step % 4 == 0) {
      // This thread's copies of span rel are done (groups rel + 1 .. rel + kS - 2
      // may fly); after the barrier everyone's are, and every thread has
      // finished decoding span rel - 1, whose buffer the next copy reuses.
      AsyncWait<kS - 2>();
      __syncthreads();
      if (rel + kS - 1 < span_end - span_begin) copy_span(span_begin + rel + kS - 1, static_cast<int>((rel + kS - 1) % kS));
      AsyncCommit();
    }
    store(dcur, sbuf, step);
    __syncthreads();
    if (step + 1 < step_end) load_x(step + 1);
    const __half* const ws = dec + dcur * StageHalves<BN>();
    const __half* const xs = ws + kBM * kLd;
#pragma unroll
    for (int kq = 0; kq < kKPerGroup; kq += 16) {
      const int kk = kg * kKPerGroup + kq;
      mma::FragA a[kFT];
      mma::FragB b[kFR];
#pragma unroll
      for (int i = 0; i < kFT; ++i) mma::LoadA(a[i], xs + (wt + 16 * i) * kLd + kk, kLd);
#pragma unroll
      for (int j = 0; j < kFR; ++j) mma::LoadB(b[j], ws + (wrr + 16 * j) * kLd + kk, kLd);
#pragma unroll
      for (int i = 0; i < kFT; ++i)
#pragma unroll
        for (int j = 0; j < kFR; ++j) mma::Mma(acc[i][j], a[i], b[j]);
    }
    // Two tiles: the next store goes to the other one, which every wave finished
    // reading before this step's barrier. One tile: wait for all waves here.
    if constexpr (kD == 1) __syncthreads();
    dcur = (dcur + 1) % kD;
  }
  AsyncWaitAll();  // no copy may outlive the block (only empty groups remain)

  // K groups 1.. leave their partial sums in shared memory (free now: every
  // wave is past its last read), [group - 1][row][token]; group 0 adds them.
  // Lane l of wave w holds the same elements as lane l of wave w % (kWavesR * kWavesT).
  if constexpr (kGroupsK > 1) {
    static_assert(sizeof(float) * (kGroupsK - 1) * kBM * BN <= NarrowSmemBytes(T, BN, kS, kD));
    float* const red = reinterpret_cast<float*>(smem_raw);
    __syncthreads();
    if (kg > 0) {
#pragma unroll
      for (int i = 0; i < kFT; ++i)
#pragma unroll
        for (int j = 0; j < kFR; ++j)
          mma::ForEachAcc(acc[i][j], [&](int m, int c, float v) {
            red[((kg - 1) * kBM + wrr + 16 * j + c) * BN + wt + 16 * i + m] = v;
          });
    }
    __syncthreads();
    if (kg > 0) return;
  }
  // acc[i][j] element (m, c) is y[token tok0+wt+16i+m][row row0+wrr+16j+c].
#pragma unroll
  for (int i = 0; i < kFT; ++i) {
#pragma unroll
    for (int j = 0; j < kFR; ++j) {
      mma::ForEachAcc(acc[i][j], [&](int m, int c, float v) {
        if constexpr (kGroupsK > 1) {
          const float* const red = reinterpret_cast<const float*>(smem_raw);
#pragma unroll
          for (int g = 1; g < kGroupsK; ++g) v += red[((g - 1) * kBM + wrr + 16 * j + c) * BN + wt + 16 * i + m];
        }
        const int tok = tok0 + wt + 16 * i + m;
        const int64_t r = row0 + wrr + 16 * j + c;
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

// y of every part zeroed; grid-stride over float4 where a part's size allows.
__global__ void ZeroPartsKernel(const GemmParts parts, int n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int p = 0; p < parts.count; ++p) {
    float* const y = p == 0 ? parts.y[0] : p == 1 ? parts.y[1] : parts.y[2];
    const int64_t total = static_cast<int64_t>(n) * (p == 0 ? parts.rows[0] : p == 1 ? parts.rows[1] : parts.rows[2]);
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) y[i] = 0.0f;
  }
}

GemmConfig g_config;  // benchmark override (SetGemmConfig); default: automatic

template <GgmlType T, int BN, bool kStageX = false>
void LaunchTile(const GemmParts& parts, int64_t cols, const float* x, int n, Stream s) {
  const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
  const unsigned tok_tiles = Blocks(n, BN), row_tiles = static_cast<unsigned>(parts.tiles);
  const int64_t n_steps = (cols + kBK - 1) / kBK;
  // Split K until the grid covers the chip bps times over (4 for the decode
  // tiles, 2 for 128 tokens: the sweep's best), keeping at least 8 steps per
  // split: more splits cost atomics and partial sums.
  const int bps = g_config.blocks_per_sm > 0 ? g_config.blocks_per_sm : (BN <= 64 ? 4 : 2);
  const int64_t target = static_cast<int64_t>(MultiprocessorCount()) * bps;
  const int64_t tiles = static_cast<int64_t>(tok_tiles) * row_tiles;
  int64_t splits = tiles >= target ? 1 : (target + tiles - 1) / tiles;
  splits = std::max<int64_t>(1, std::min(splits, n_steps / 8));
  if (g_config.splits > 0) splits = std::min<int64_t>(g_config.splits, n_steps);
  const int64_t per = (n_steps + splits - 1) / splits;
  splits = (n_steps + per - 1) / per;
  if (splits > 1) LaunchZeroParts(parts, n, s);
  // Above 48 KiB a kernel must opt in to its dynamic shared memory, once.
  static const bool smem_ok = [] {
#if defined(RF_GPU_CUDA)
    const auto attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
#else
    const auto attr = hipFuncAttributeMaxDynamicSharedMemorySize;
#endif
    return hipFuncSetAttribute(reinterpret_cast<const void*>(&GemmMmaKernel<T, BN, PrefetchSteps(T, BN), kStageX>), attr,
                               static_cast<int>(SmemBytes<BN, kStageX>())) == hipSuccess;
  }();
  (void)smem_ok;  // a failure shows as the launch's error
  const dim3 grid(tok_tiles, row_tiles, static_cast<unsigned>(splits));
  GemmMmaKernel<T, BN, PrefetchSteps(T, BN), kStageX><<<grid, kThreads, SmemBytes<BN, kStageX>(), ToStream(s)>>>(
      parts, cols, row_bytes, x, n, static_cast<int>(per), splits > 1);
}

// The narrow path's choice for these arguments: token tile bn (0 = the narrow
// path does not apply) and kernel (v5 register-direct, kernels/
// matmul_mma_narrow.hip, n <= 128; or v4 here, f16 weight tile, n <= 64).
struct NarrowChoice {
  int bn;
  bool v4;
};
// Automatic choice by type and n: the kernel and tile with the least summed
// time over the three Llama-3-8B shapes on the H100 (docs/gpu.md "Narrow GEMM
// v5"): v5 up to 32 tokens, v4 at 33-64, v5's 128-token tile above (Q4_K: from
// 97 on; at 65-96 GemmMmaKernel ties with it); bn = 0 leaves n to GemmMmaKernel.
NarrowChoice AutoNarrow(GgmlType t, int n) {
  if (n <= 16) return {16, false};
  if (n <= 32) return {32, false};
  if (n <= 64) return {64, true};
  return {t == GgmlType::Q4_K && n <= 96 ? 0 : 128, false};
}
NarrowChoice Narrow(GgmlType t, const void* w, int64_t cols, int n) {
  const NarrowChoice none{0, false};
  if (!NarrowType(t) || g_config.narrow < 0 || (g_config.narrow == 0 && g_config.token_tile != 0)) return none;
  if (!MatMulMmaAvailable() || n <= 0 || n > 128 || cols <= 0 || cols % 256 != 0 ||
      reinterpret_cast<uintptr_t>(w) % 16 != 0) {
    return none;
  }
  NarrowChoice c = AutoNarrow(t, n);
  if (g_config.narrow == 2) {  // v4 forced (for comparisons): n <= 64, its own tile
    if (n > 64) return none;
    c = {n <= 16 ? 16 : n <= 32 ? 32 : 64, true};
  } else if (g_config.narrow == 1) {  // v5 forced, with token_tile's tile if it names one
    const int f = g_config.token_tile;
    c = {f == 16 || f == 32 || f == 64 || f == 128 ? f : n <= 16 ? 16 : n <= 32 ? 32 : n <= 64 ? 64 : 128, false};
  }
  if (c.bn == 0) return none;
  const bool fits = c.v4 ? PlanNarrow(t, c.bn).stages > 0 : NarrowRegFits(t, c.bn);
  return fits ? c : none;
}

template <GgmlType T, int BN>
void LaunchNarrowTile(const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n, Stream s) {
  constexpr NarrowPlan kPlan = PlanNarrow(T, BN);
  if constexpr (kPlan.stages > 0) {
    constexpr auto kKernel = &GemmNarrowKernel<T, BN, kPlan.stages, kPlan.dec_bufs>;
    constexpr size_t kSmem = NarrowSmemBytes(T, BN, kPlan.stages, kPlan.dec_bufs);
    const int64_t row_bytes = cols / BlockElems(T) * BlockBytes(T);
    const unsigned tok_tiles = Blocks(n, BN), row_tiles = Blocks(rows, kBM);
    const int64_t n_spans = cols / 256;
    // Split K so that the grid is one resident wave (shared memory allows two
    // blocks per SM): as many splits as fit without a second, partial wave (the
    // H100 sweep's best at all three Llama shapes, docs/gpu.md "GEMM" v4). A
    // forced blocks_per_sm covers the chip that many times over instead. At
    // least 2 spans (8 steps) per split.
    const int64_t tiles = static_cast<int64_t>(tok_tiles) * row_tiles;
    int64_t splits = 1;
    if (g_config.blocks_per_sm > 0) {
      const int64_t target = static_cast<int64_t>(MultiprocessorCount()) * g_config.blocks_per_sm;
      splits = tiles >= target ? 1 : (target + tiles - 1) / tiles;
    } else {
      splits = 2 * static_cast<int64_t>(MultiprocessorCount()) / tiles;
    }
    splits = std::max<int64_t>(1, std::min(splits, n_spans / 2));
    if (g_config.splits > 0) splits = std::min<int64_t>(g_config.splits, n_spans);
    const int64_t per = (n_spans + splits - 1) / splits;
    splits = (n_spans + per - 1) / per;
    if (splits > 1) (void)hipMemsetAsync(y, 0, sizeof(float) * static_cast<size_t>(n) * rows, ToStream(s));
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
    kKernel<<<grid, kThreads, kSmem, ToStream(s)>>>(static_cast<const uint8_t*>(w), rows, cols, row_bytes, x, y,
                                                    n, static_cast<int>(per), splits > 1);
  } else {
    (void)w, (void)rows, (void)cols, (void)x, (void)y, (void)n, (void)s;  // Narrow never picks it
  }
}

// One launch for every part (kernels/gemm_parts.h), except the v4 narrow
// kernel, which has no parts table: its parts are launched one by one.
template <GgmlType T>
void Launch(const GemmParts& parts, int64_t cols, const float* x, int n, Stream s) {
  if constexpr (NarrowType(T)) {
    NarrowChoice c = Narrow(T, parts.w[0], cols, n);
    for (int i = 1; i < parts.count; ++i) {
      if (Narrow(T, parts.w[i], cols, n).bn != c.bn) c = NarrowChoice{0, false};  // misaligned part
    }
    if (c.bn != 0 && !c.v4) {
      return LaunchNarrowReg(T, parts, cols, x, n, c.bn, g_config.blocks_per_sm, g_config.splits,
                             MultiprocessorCount(), s);
    }
    if (c.bn != 0) {
      for (int i = 0; i < parts.count; ++i) {
        const void* w = parts.w[i];
        float* y = parts.y[i];
        const int64_t rows = parts.rows[i];
        switch (c.bn) {
          case 16: LaunchNarrowTile<T, 16>(w, rows, cols, x, y, n, s); break;
          case 32: LaunchNarrowTile<T, 32>(w, rows, cols, x, y, n, s); break;
          default: LaunchNarrowTile<T, 64>(w, rows, cols, x, y, n, s); break;
        }
      }
      return;
    }
  }
  switch (g_config.token_tile) {
    case 32: return LaunchTile<T, 32>(parts, cols, x, n, s);
    case 64: return LaunchTile<T, 64>(parts, cols, x, n, s);
    case 128: return LaunchTile<T, 128>(parts, cols, x, n, s);
#if defined(RF_GPU_CUDA)
    case 129: return LaunchTile<T, 128, true>(parts, cols, x, n, s);
#endif
    default: break;
  }
  if (n <= 32) return LaunchTile<T, 32>(parts, cols, x, n, s);
  if (n <= 64) return LaunchTile<T, 64>(parts, cols, x, n, s);
#if defined(RF_GPU_CUDA)
  // Staged activations: two blocks per SM; +5-30% over the register path at n >= 512.
  return LaunchTile<T, 128, true>(parts, cols, x, n, s);
#else
  return LaunchTile<T, 128>(parts, cols, x, n, s);
#endif
}

// The type's launcher for a parts table; false where the matrix-core GEMM does
// not take the type (not MatMulMmaTypeSupported; F16 / BF16 rows that are not
// whole 16-value runs).
bool LaunchParts(GgmlType type, const GemmParts& parts, int64_t cols, const float* x, int n, Stream s) {
  const bool float_ok = cols % 16 == 0;
  switch (type) {
    case GgmlType::F16:
      if (!float_ok) return false;
      Launch<GgmlType::F16>(parts, cols, x, n, s);
      return true;
    case GgmlType::BF16:
      if (!float_ok) return false;
      Launch<GgmlType::BF16>(parts, cols, x, n, s);
      return true;
    case GgmlType::Q8_0: Launch<GgmlType::Q8_0>(parts, cols, x, n, s); return true;
    case GgmlType::Q4_0: Launch<GgmlType::Q4_0>(parts, cols, x, n, s); return true;
    case GgmlType::Q4_K: Launch<GgmlType::Q4_K>(parts, cols, x, n, s); return true;
    case GgmlType::Q5_K: Launch<GgmlType::Q5_K>(parts, cols, x, n, s); return true;
    case GgmlType::Q6_K: Launch<GgmlType::Q6_K>(parts, cols, x, n, s); return true;
    default: return false;
  }
}

// MarkOutputsZeroed's parts (kernels/act_quant_launch.h), per host thread:
// launches are enqueued by the thread that runs the backend.
struct ZeroedOutputs {
  float* y[kMaxMatVecParts] = {};
  int64_t rows[kMaxMatVecParts] = {};
  int count = 0, n = 0;
  bool asked = false;  // a LaunchZeroParts call came since MarkOutputsZeroed
};
thread_local ZeroedOutputs t_zeroed;

bool AlreadyZeroed(const GemmParts& parts, int n) {
  const ZeroedOutputs& z = t_zeroed;
  if (z.count == 0 || z.n != n) return false;
  for (int p = 0; p < parts.count; ++p) {
    bool found = false;
    for (int i = 0; i < z.count; ++i) found = found || (z.y[i] == parts.y[p] && z.rows[i] == parts.rows[p]);
    if (!found) return false;
  }
  return true;
}

}  // namespace

void MarkOutputsZeroed(const MatVecPart* parts, int n_parts, int n) {
  ZeroedOutputs z;
  for (int i = 0; i < n_parts && i < kMaxMatVecParts; ++i) {
    z.y[z.count] = parts[i].y;
    z.rows[z.count++] = parts[i].rows;
  }
  z.n = n;
  t_zeroed = z;
}

bool ClearOutputsZeroed() {
  const bool asked = t_zeroed.asked;
  t_zeroed = ZeroedOutputs{};
  return asked;
}

void LaunchZeroParts(const GemmParts& parts, int n, Stream s) {
  t_zeroed.asked = true;
  if (AlreadyZeroed(parts, n)) return;  // the producer of the GEMM's input zeroed them
  int64_t total = 0;
  for (int p = 0; p < parts.count; ++p) total += static_cast<int64_t>(n) * parts.rows[p];
  if (total <= 0) return;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 4 * static_cast<int64_t>(MultiprocessorCount()));
  ZeroPartsKernel<<<static_cast<unsigned>(blocks), 256, 0, ToStream(s)>>>(parts, n);
}

void SetGemmConfig(const GemmConfig& c) { g_config = c; }
GemmConfig GetGemmConfig() { return g_config; }
bool MatMulMmaNarrowTakes(GgmlType type, const void* w, int64_t cols, int n) {
  return Narrow(type, w, cols, n).bn != 0;
}

bool MatMulMmaAvailable() {
#if defined(RF_GPU_CUDA)
  return true;
#else
  return DeviceHasMatrixCores();
#endif
}

void LaunchMatMulMma(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                     float* y, int n, Stream s) {
  if (n <= 0 || rows <= 0) return;
  if (!MatMulMmaAvailable() || !LaunchParts(type, SinglePart(w, y, rows, kBM), cols, x, n, s)) {
    LaunchMatMulTiled(type, w, rows, cols, x, y, n, s);
  }
}

bool MatMulMmaTypeSupported(GgmlType type) {
  switch (type) {
    case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

bool MatMulMmaGroupOneLaunch(GgmlType type, int64_t cols, int n, const MatVecPart* parts, int n_parts) {
  if (n <= 0 || n_parts <= 0 || n_parts > kMaxMatVecParts || !MatMulMmaAvailable()) return false;
  if (!MatMulMmaTypeSupported(type)) return false;
  if ((type == GgmlType::F16 || type == GgmlType::BF16) && cols % 16 != 0) return false;
  if (NarrowType(type)) {
    NarrowChoice c = Narrow(type, parts[0].w, cols, n);
    for (int i = 1; i < n_parts; ++i) {
      if (Narrow(type, parts[i].w, cols, n).bn != c.bn) c = NarrowChoice{0, false};
    }
    if (c.bn != 0 && c.v4) return n_parts == 1;
  }
  return true;
}

void LaunchMatMulMmaGroup(GgmlType type, int64_t cols, const float* x, int n, const MatVecPart* parts, int n_parts,
                          Stream s) {
  if (n <= 0 || n_parts <= 0) return;
  GemmParts p;
  for (int i = 0; i < n_parts && p.count < GemmParts::kMax; ++i) {
    if (parts[i].rows <= 0) continue;
    p.w[p.count] = static_cast<const uint8_t*>(parts[i].w);
    p.y[p.count] = parts[i].y;
    p.rows[p.count] = parts[i].rows;
    p.tile_begin[p.count] = p.tiles;
    p.tiles += static_cast<int>((parts[i].rows + kBM - 1) / kBM);
    ++p.count;
  }
  if (p.count == 0) return;
  if (MatMulMmaAvailable() && LaunchParts(type, p, cols, x, n, s)) return;
  for (int i = 0; i < p.count; ++i) LaunchMatMulTiled(type, p.w[i], p.rows[i], cols, x, p.y[i], n, s);
}

}  // namespace rocmforge::gpu
