// Batched-decode GEMM on the int8 matrix cores ("MMQ"), kMmqMinTokens..128 tokens of Q4_K /
// Q6_K: y[n][rows] = xq . W^T, where xq holds the activations already quantized
// to ActQ8 slices with the Q8_K rule (LaunchQuantizeActivation; one d per 256
// values). Chosen by the caller through MatMulMmqTakes (kernels/gpu_api.h).
//
// Why: v5 (matmul_mma_narrow.hip) decodes every weight to f16 before an f16 MMA,
// ~13 thread instructions a weight, and is issue-bound (docs/gpu.md "Narrow GEMM
// v5"). Here the 4- / 6-bit quants go into s8 A registers with a mask or two
// (no scale math per weight) and meet the int8 activations in mma.sync s8; the
// weight scales are applied to the int32 sums, once per 32 (Q4_K) or 16 (Q6_K)
// values, and the float scales once per 256-value span.
//
// Math per weight row r, token n and span (256 values; d_a = the token's
// activation scale of the span, s_j = d_a * sum of slice j's int8):
//   Q4_K (value = d sc_j q - dmin m_j):
//     y += d_a d * sum_j sc_j c_j  -  dmin * sum_j m_j s_j,   c_j = int8 dot of slice j
//   Q6_K (value = d sc_u (q - 32), u = 16-value unit):
//     y += d_a d * sum_u sc_u c_u, with A = q - 32 as s8.
// sum_j sc_j c_j stays in int32 (|.| < 2^31: 8 x 63 x 32 x 15 x 127).
//
// A lane's A word is 4 consecutive quants of one row; the k order inside a
// 32-slice is permuted (allowed: A and B use the same order): for Q4_K, lane
// t = l % 4 takes the 8 bytes at 8t of a 32-byte qs chunk, low nibbles for
// sub-block 2c, high for 2c + 1, as registers a0 / a2 (logical k 4t.. and
// 16 + 4t..), and B takes the 8 activation bytes at 8t of the slice the same
// way. Q6_K uses m16n8k16 per 16-value unit, natural order.
//
// Per block: 128 weight rows x BN tokens (16, 32, 64 or 128; two blocks an SM,
// one at 128), K in 256-value spans.
// Each span's weight bytes (the rows' blocks) and activation slices (8 ActQ8
// of each token, 320 bytes) go to shared memory by 16-byte async copies, kS
// spans ahead: weight chunk t + 256 j of the tile per thread (each warp
// instruction covers contiguous bytes), offsets worked out once, shared memory
// addressed by its 32-bit window address. 8 waves of 16 rows x all BN tokens: each weight fragment is
// decoded once per block and met with every token fragment; the Q4_K mins term
// is one exact f16 mma per 16 rows x 8 tokens and span on the integer slice
// sums, applied one span late so that one barrier per span suffices; Q6_K
// words (2-byte aligned spans) are read as two aligned shared words and a
// funnel shift. A tile's last block along tokens runs only the token
// fragments below n (one body per fragment count, picked per block). Blocks splitting
// K (blockIdx.z) meet in y through atomicAdd after LaunchZeroParts, as v5.
// Rows past the matrix and tokens past n are not copied: their stale shared
// bytes reach only C rows / columns that are never stored. NVIDIA only;
// elsewhere MatMulMmqTakes is false.
//
// History (H100, 2026-11-26, `bench_gpu_kernels mmq`): the first version gave
// each wave 32 rows x half the tokens, so both token-group waves decoded the
// same A fragments, took the mins as one float FMA per C element and
// sub-block, and spent ~30 instructions of index math per 16-byte copy (~10
// thread instructions a weight, issue-bound); this one is 1.1-1.6x faster at
// every shape (gate/up n = 32: 44.5 vs 63.0 us, 09:15 UTC). Measured and
// dropped (08:47 UTC): this compute with Hopper bulk copies (one
// cp.async.bulk per 144-224-byte row span and per token, issued by one wave,
// completing on an mbarrier) ran 1.3-2x slower than the first version: ~45 SM
// cycles per small bulk copy, 71% of the warps' time waiting at the barrier
// for the issuing wave. Whole-tile copies (cp.async.bulk.tensor with a tensor
// map, one per span) would avoid that. ncu of the row-owning kernel at n = 32
// (10:22 UTC): gate/up Q4_K 547 warp instructions per span and wave, ~115 of
// them the copies' index math, 15% of the stall samples at the second (mins)
// barrier; down Q6_K 1427, with ~250 for the copies and generic (not shared)
// loads for the misaligned Q6_K words through LoadWords' integer cast. The
// copy scheme (warp chunks contiguous, cheap addressing), the one-barrier mins
// and the funnel-shift loads above replace them. H100, 2026-11-26 11:50 UTC,
// `bench_gpu_kernels mmq`, before -> after (us): down Q6_K n = 32 42.8 -> 36.7,
// n = 96 104.1 -> 89.5, V Q6_K n = 32 12.1 -> 10.5; Q4_K within -1..+7% (gate/up
// n = 32 41.6 -> 43.1, n = 96 103.8 -> 110.9: the one-barrier mins may cost
// Q4_K what the copies save); 32-decode step 5.90 -> 5.80 ms, N = 8 4.58 -> 4.28.
// 13:04-13:17 UTC: the 128-token tile (16 fragments a wave, 227 registers, one
// block an SM) alone was slower than 64-token tiles at n = 112..128 (gate/up
// 132 vs 118 us; ncu: 8 warps an SM, issue slots 35% busy against 55% for
// 32-token tiles) and won
// only with 10-12 live fragments (AutoTile); skipping a partial tile's dead
// fragments gave n = 40 / 48 (64-token tile) gate/up 50.7 / 53.4 us against
// the full tile's 63-65. Measured and dropped: the Q4_K mins in their own span
// (a second barrier, scales and mins in one pass): equal or up to 5% slower
// at every shape and n = 24..128 (gate/up n = 64 66.5 vs 63.2 us).
// Measured and dropped (15:11 UTC): Q4_K with the sub-block scale folded into
// A (sc = 8 sh + sl, A = q sh and q sl as s8, two products a slice that
// accumulate over the span in the matrix cores, no integer multiply-add per C
// element): slower at every shape and n (gate/up n = 32 / 64 / 128: 51.8 /
// 92.2 / 162.4 us against 43.4 / 67.0 / 125.5; 128-token step 13.7 vs 11.6 ms).
// Doubling the products cost more than the IMADs saved, yet not for the
// tensor rate: mma.sync completes 1290 int8 TOPS in a pure loop
// (`bench_gpu_kernels mma_rate`, 15:35) and the prescaled gate/up at n = 128
// ran ~370 (the products' serial accumulation chains and twice the B-operand
// use are the suspects; not profiled).
// Measured and dropped (15:46-15:59 UTC, H100): (1) the 128-token tile as 16
// waves (8 row groups x 2 token halves of 64, <= 128 registers, 4 warps a
// scheduler): equal to the 8-wave tile (gate/up n = 96 / 128: 105.7 / 130.2 vs
// 105.0 / 129.2 us; down Q6_K n = 128 86.7 vs 84.4), so occupancy is not the
// bound. ncu (--set full, gate/up n = 128): t64 issue slots 56% busy, 1.36
// eligible warps a scheduler; per IMMA ~16 instructions (4.7 IMAD, 1.8 LDS,
// 1.1 FMUL, 1.0 FFMA, 0.5 I2FP: the span's float epilogue and mins are ~1/4
// of them); the top stalls sit on the IMADs ("math": the half-rate integer
// FMA pipe, in bursts after each slice's IMMAs); SMs are active 82-84% of
// the time at t128 and at n = 32 (224 tiles on 132 SMs: a partial last
// round), 94% at t64 n = 128. (2) Blocks of
// even shares of the launch's (tile, span) units, crossing tile boundaries
// (stream-K style, atomics), against the tail: only gate/up n = 96 (t128, 132
// blocks) gained (99.2 vs 104.5 us); n = 24 / 32 / 64 / 128 lost (42.9 / 44.7 /
// 67.8 / 125.0 vs 40.0 / 43.0 / 65.0 / 118.2; two resident 64-token blocks
// already share an SM's tail, and the looped kernel spills), and the 32-decode
// + 64-token chunk step was 10.8 vs 10.45 ms. The bound to attack is the
// per-slice IMAD (one a C element and slice) and the issue slots around it:
// wgmma (1944 int8 TOPS measured) with the scales folded into A (two
// products a slice) would need neither IMADs nor per-fragment B loads.
// Measured and dropped (session 10, 18:05-18:29 UTC, H100): exactly that
// kernel (sm_90a; 128 rows = two warpgroups x BN tokens; A = q sh / q sl
// decoded in registers, natural k order; B = the ActQ8 int8 values staged by
// 8-byte cp.async into wgmma's K-major no-swizzle layout, LBO 128 / SBO 256;
// hi and lo accumulators over the span, y += d_a d (8 hi + lo); the mins as
// here; the decode of slice j + 1 beside the products of slice j). Exact (the
// same logits as this kernel bit for bit), but no faster: us, this kernel /
// wgmma (best variant) at n = 16 / 32 / 64 / 96 / 128: gate/up 37.9 / 38.2,
// 43.2 / 42.5, 64.7 / 71.5, 103.6 / 124.1, 116.5 / 136.0; down Q4_K 22.8 /
// 22.7, 26.1 / 26.0, 34.9 / 36.8, 52.0 / 58.7, 58.2 / 63.3 (Q/K/V and O the
// same pattern). ncu at gate/up n = 32: ~547 warp instructions a span and
// warp, as many as here, issue slots 32% busy: the fixed per-span work (A
// decode, scale extraction, the float epilogue a C element, the mins, the
// copies) binds both kernels, and at the 128-token tile (~115 us for gate/up
// whatever n) each span's chain of dependent wgmmas into one accumulator
// seems to run at their latency. Untried: independent accumulator sets and a
// cheaper epilogue. The kernel is kept outside the tree (session 10's note).
// Measured and dropped (session 10, 18:49-18:56 UTC, H100 80GB HBM3, two
// calls, `bench_gpu_kernels mmq` A/B rows, automatic tile and splits): the
// sub-block scales by dp2a on slice pairs. A = q - 8 as s8 (|c'_j| <= 8 x 32 x
// 127 fits a 16-bit half), slices 2c and 2c + 1 into two C fragments, per C
// element one PRMT packing (c'_2c, c'_2c+1) and one dp2a.lo / .hi with the
// packed scale word as it is; the centering term 8 sum_j sc_j S_j as a second
// exact f16 mma on the mins operand, added to the int32 sums (magic-number
// float->int) before the float epilogue, one span late with the mins: y bit
// for bit equal to this kernel (tested with q = 0 / 15, sc = m = 63 and
// activations of +-127 over whole 256-groups; memcheck clean). Slower at every
// shape and n; us, this kernel / dp2a at n = 16 / 32 / 64 / 96 / 128:
// gate/up 37.5 / 40.6, 43.8 / 48.7, 63.3 / 74.6, 103.2 / 112.6, 118.6 / 133.4;
// down Q4_K 23.1 / 24.7, 25.8 / 28.1, 35.3 / 40.8, 53.0 / 57.3, 60.6 / 71.2;
// Q/K/V 15.4 / 16.9, 17.9 / 19.3, 23.8 / 27.0, 34.7 / 36.9, 32.9 / 36.8; O
// 10.8 / 11.3, 12.9 / 13.5, 17.4 / 18.7, 22.5 / 23.5, 23.4 / 26.7. Steps
// (`bench_gpu_decode Q4_K_M /tmp batch 32 512`, ms): 32 decodes 5.17 vs 5.40,
// + 64-token chunk 10.28 vs 11.11. Two variants in the same call ran within
// -1..+5% of the dp2a kernel's times: the centering term in float inside the per-span
// epilogue (this kernel's loop, no deferred int32 sums), and centered quants
// with two IMADs a slice pair instead of PRMT + dp2a. So halving the IMADs
// buys nothing here (the integer-multiply pipe is not the bound whatever ncu's
// "math pipe throttle" says), and what all three share costs 5-15%: the
// centering (LOP3 + IADD + LOP3 per A register, for one mask before), both
// slices' A and C fragments live at once (255 registers at the 128-token tile
// against 229). Not profiled.
#include <algorithm>
#include <type_traits>

#include "kernels/gemm_parts.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"
#include "kernels/quant_device.h"

namespace rocmforge::gpu {

// GemmConfig lives in kernels/matmul_mma.hip (GetGemmConfig).
namespace {

constexpr int kBM = 128;  // weight rows per block

#if defined(RF_GPU_CUDA)
constexpr int kThreads = 256;  // 8 waves of 32
constexpr int kActChunks = 20;  // 16-byte chunks of a token's 8 slices (320 bytes)
// Shared bytes per token and span: 88 words = 24 mod 32 banks, so the 8-byte B
// loads of 4 tokens x 4 lanes (one half-warp) hit distinct banks.
constexpr int kActStride = 352;

constexpr bool MmqType(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q6_K; }
constexpr int SpanBytes(GgmlType t) { return t == GgmlType::Q4_K ? 144 : 210; }
// Row slot in shared memory: the span plus (Q6_K) its 2-byte misalignment,
// rounded so that rows start 32 or 96 bytes apart modulo 128 (v5's rule: the
// 8-byte A loads of rows g..g+3 x 4 lanes are conflict-free).
constexpr int SlotBytes(GgmlType t) { return t == GgmlType::Q4_K ? 160 : 224; }
constexpr int StageBytes(GgmlType t, int bn) { return kBM * SlotBytes(t) + bn * kActStride; }
// Resident blocks per SM: two for tiles up to 64 tokens; the 128-token tile
// (64 f32 accumulators + 64 int32 span sums a lane) takes one block with up to
// 255 registers a thread and the whole shared memory.
constexpr int BlocksPerSm(int bn) { return bn >= 128 ? 1 : 2; }
// Dynamic shared memory per block: two blocks per SM, or one (less the static
// mins arrays, 9 KB at 128 tokens).
constexpr int SmemBudget(int bn) { return BlocksPerSm(bn) == 1 ? 216 * 1024 : 113 * 1024; }
constexpr int Stages(GgmlType t, int bn) {
  const int s = SmemBudget(bn) / StageBytes(t, bn);
  return s > 4 ? 4 : s;
}

__device__ __forceinline__ float LoadF32(const uint8_t* p) { return *reinterpret_cast<const float*>(p); }
// q in 0..63 per byte -> q - 32 as s8 per byte (no borrow between bytes: 128 + q - 32 >= 96).
__device__ __forceinline__ uint32_t Minus32(uint32_t q) { return ((q | 0x80808080u) - 0x20202020u) ^ 0x80808080u; }

// f16 pair (lo, hi) of two integers that f16 holds exactly (here: below 64, or
// multiples of 64 up to 4096 in magnitude).
__device__ __forceinline__ uint32_t HalfPair(int lo, int hi) {
  return static_cast<uint32_t>(__half_as_ushort(__int2half_rn(lo))) |
         (static_cast<uint32_t>(__half_as_ushort(__int2half_rn(hi))) << 16);
}
// Bytes b, b + 1 of w (0..63 each) as an exact f16 pair: 0x64XX is the f16
// 1024 + XX, then 1024 is taken off.
__device__ __forceinline__ uint32_t BytePairHalf(uint32_t w, uint32_t b) {
  const uint32_t biased = __byte_perm(w, 0x64646464u, b | (4u << 4) | ((b + 1) << 8) | (4u << 12));
  const __half2 h = __hsub2(*reinterpret_cast<const __half2*>(&biased), __half2half2(__ushort_as_half(0x6400)));
  return *reinterpret_cast<const uint32_t*>(&h);
}
// C (16 x 8, f32) += A . B, f16 operands (m16n8k16): a0 = A[g][2t..], a1 =
// A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]; b0 = B[2t..][g], b1 =
// B[2t+8..][g]; C in FragCI8's layout.
__device__ __forceinline__ void MmaF16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                       uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 16-byte asynchronous copy to a shared-window address (AsyncCopy16 takes a
// generic pointer and converts it per copy; here the block's shared base is
// converted once).
__device__ __forceinline__ void CopyAsync16(uint32_t smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
}
// The 4 bytes at p + 2 * (shift / 16) where p is 4-byte aligned, shift 0 or 16
// (a Q6_K span starts 2-byte aligned in shared memory): two aligned shared
// loads and a funnel shift.
__device__ __forceinline__ uint32_t ShiftedWord(const uint8_t* p, uint32_t shift) {
  return __funnelshift_r(*reinterpret_cast<const uint32_t*>(p), *reinterpret_cast<const uint32_t*>(p + 4), shift);
}

// f(std::integral_constant<int, NF>) for the smallest NF = kNf - i * kStep
// (i >= 0, NF >= kStep) that is >= nf: one body per NF, picked by uniform branches.
template <int kNf, int kStep, typename F>
__device__ __forceinline__ void WithFragments(int nf, F&& f) {
  if constexpr (kNf <= kStep) {
    f(std::integral_constant<int, kNf>{});
  } else {
    if (nf > kNf - kStep) {
      f(std::integral_constant<int, kNf>{});
    } else {
      WithFragments<kNf - kStep, kStep>(nf, f);
    }
  }
}

template <GgmlType T, int BN, int kS>
__global__ void __launch_bounds__(kThreads, BlocksPerSm(BN))
    GemmMmqKernel(const GemmParts parts, int64_t cols, int64_t row_bytes, const uint8_t* __restrict__ xq, int n,
                      int spans_per_split, bool accumulate) {
  constexpr int kSpan = SpanBytes(T), kSlot = SlotBytes(T);
  constexpr int kStage = StageBytes(T, BN);
  constexpr int kFT = BN / 8;  // token fragments: every wave takes 16 rows x all BN tokens
  // Copies, one commit group per span. Weights: tile chunk i = t + kThreads j
  // (row i / kChunks16, 16-byte chunk i % kChunks16 of its slot) goes to stage
  // byte 16 i, so each copy instruction of a warp covers 512 contiguous slot
  // bytes (whole 32-byte sectors of a few rows); a Q4_K row's span is chunks
  // 0..8 (144 bytes, aligned), a Q6_K row's (210 bytes, 2-byte aligned) the 14
  // chunks from its start rounded down to 16. Activations: kTPT threads a
  // token, chunks (t % kTPT) + kTPT jj of its 8 slices (20 chunks). Offsets are
  // worked out once; a copy costs ~4 instructions.
  constexpr int kChunks16 = kSlot / 16;
  constexpr int kSpanChunks = T == GgmlType::Q4_K ? kSpan / 16 : kChunks16;
  constexpr int kWIters = kBM * kChunks16 / kThreads;
  constexpr int kTPT = kThreads / BN;
  constexpr int kXIters = (kActChunks + kTPT - 1) / kTPT;
  constexpr uint32_t kSkip = 0xffffffffu;
  static_assert(kBM * kChunks16 % kThreads == 0);
  static_assert(kThreads / 32 * 16 == kBM && kThreads % BN == 0);
  static_assert(kSpan % 16 == 0 || kSpanChunks * 16 >= kSpan + 14);

  extern __shared__ __align__(16) unsigned char smem_raw[];
  // Q4_K mins operand of a span (see below), two spans' worth: token tk's pair
  // q at 4 tk + q; and the tokens' activation scales d_a of that span.
  constexpr int kMinsTok = T == GgmlType::Q4_K ? BN : 1;
  __shared__ uint2 mins_b[2][kMinsTok * 4];
  __shared__ float mins_da[2][kMinsTok];
  const int t = threadIdx.x, lane = t % 32, wave = t / 32;
  const int g = lane / 4, q = lane % 4;
  const int tok0 = blockIdx.x * BN;
  const int tile_toks = n - tok0 < BN ? n - tok0 : BN;
  const GemmPart part = PartOfTile(parts, static_cast<int>(blockIdx.y), kBM);
  const int64_t rows = part.rows, row0 = part.row0;
  const int tile_rows = rows - row0 < kBM ? static_cast<int>(rows - row0) : kBM;
  const int64_t n_spans = cols / 256, slices = cols / 32;
  const int64_t span_begin = static_cast<int64_t>(blockIdx.z) * spans_per_split;
  const int64_t span_end = span_begin + spans_per_split < n_spans ? span_begin + spans_per_split : n_spans;
  const uint8_t* const w_end = part.w + rows * row_bytes;
  const uint8_t* const w_tile = part.w + row0 * row_bytes;  // 16-byte aligned (128 rows of whole spans)
  const uint8_t* const x_tile = xq + static_cast<int64_t>(tok0) * slices * 40;
  const uint32_t tok_bytes = static_cast<uint32_t>(slices * 40);
  const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));

  // This thread's copies (offsets from w_tile / x_tile below 2^28: MmqTile):
  // chunk j's offset in span 0 (Q6_K: before rounding down; adding a multiple
  // of 16 commutes with it), kSkip for rows past the matrix (not copied) and a
  // Q4_K slot's pad chunk. Q6_K: a thread with a chunk of the matrix's last
  // row copies with care (its last chunk may pass the matrix's end).
  uint32_t woff[kWIters];
  bool w_tail = false;
#pragma unroll
  for (int j = 0; j < kWIters; ++j) {
    const int i = t + j * kThreads, r = i / kChunks16, c = i % kChunks16;
    woff[j] = r >= tile_rows || c >= kSpanChunks
                  ? kSkip
                  : static_cast<uint32_t>(r) * static_cast<uint32_t>(row_bytes) + 16u * static_cast<uint32_t>(c);
    w_tail |= T == GgmlType::Q6_K && row0 + r == rows - 1;
  }
  const uint32_t w_dst = smem_base + 16u * static_cast<uint32_t>(t);
  const int x_tok = t / kTPT, x_c0 = t % kTPT;
  const bool x_on = x_tok < tile_toks;  // tokens past n are not copied
  const uint32_t x_off = static_cast<uint32_t>(x_tok) * tok_bytes + 16u * static_cast<uint32_t>(x_c0);
  const uint32_t x_dst = smem_base + static_cast<uint32_t>(kBM * kSlot + x_tok * kActStride + 16 * x_c0);
  // Rows past the matrix and tokens past n keep stale shared bytes: they reach
  // only C rows / columns that are never stored.
  auto copy_span = [&](int64_t kb, int buf) {
    const uint32_t stage = static_cast<uint32_t>(buf * kStage);
    const uint32_t kb_off = static_cast<uint32_t>(kb) * kSpan;
#pragma unroll
    for (int j = 0; j < kWIters; ++j) {
      if (woff[j] == kSkip) continue;
      const uint32_t o = woff[j] + kb_off;
      const uint8_t* const src = w_tile + (T == GgmlType::Q4_K ? o : o & ~15u);
      const uint32_t dst = w_dst + stage + 16u * kThreads * j;
      if (!w_tail || src + 16 <= w_end) {
        CopyAsync16(dst, src);
      } else {  // the matrix's last chunk, cut short: every type's bytes come in pairs
        uint8_t* const d = smem_raw + (dst - smem_base);
        for (int b = 0; src + b < w_end; b += 2) {
          *reinterpret_cast<uint16_t*>(d + b) = *reinterpret_cast<const uint16_t*>(src + b);
        }
      }
    }
    if (x_on) {
      const uint8_t* const src = x_tile + (static_cast<uint32_t>(kb) * (8 * 40) + x_off);
#pragma unroll
      for (int jj = 0; jj < kXIters; ++jj) {
        if ((jj + 1) * kTPT <= kActChunks || x_c0 + jj * kTPT < kActChunks) {
          CopyAsync16(x_dst + stage + 16 * kTPT * jj, src + 16 * kTPT * jj);
        }
      }
    }
  };

  const int wr = wave * 16;  // the wave's first row in the tile
  float acc[kFT][4];
#pragma unroll
  for (int i = 0; i < kFT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;

  // Q4_K mins of the previous span, applied one span late (after the next
  // top-of-loop barrier, which publishes mins_b / mins_da: no second barrier
  // per span): this lane's m pairs of its two rows and their dmin.
  uint32_t am_prev[2] = {0u, 0u};
  float dm_prev[2] = {0.0f, 0.0f};
  auto apply_mins = [&](int mbuf, auto nf_c) {
#pragma unroll
    for (int i = 0; i < decltype(nf_c)::value; ++i) {
      const uint2 bm = mins_b[mbuf][(8 * i + g) * 4 + q];  // token 8i + g: B's column
      float cm[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      MmaF16(cm, am_prev[0], am_prev[1], am_prev[0], am_prev[1], bm.x, bm.y);
      const float da0 = mins_da[mbuf][8 * i + 2 * q], da1 = mins_da[mbuf][8 * i + 2 * q + 1];
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][e] -= ((e & 1 ? da1 : da0) * dm_prev[e >> 1]) * cm[e];
    }
  };

  // Token fragments holding tokens below n (a partial tile, the last along
  // tokens, skips the rest: they would only multiply stale shared bytes),
  // rounded up to kNfStep; the span's work runs as the body for that constant
  // (WithFragments), so acc stays in registers.
  constexpr int kNfStep = kFT >= 8 ? 2 : 1;
  const int live_nf = (tile_toks + 8 * kNfStep - 1) / (8 * kNfStep) * kNfStep;
  auto with_live_fragments = [&](auto f) { WithFragments<kFT, kNfStep>(live_nf, f); };

#pragma unroll
  for (int p = 0; p < kS - 1; ++p) {
    if (span_begin + p < span_end) copy_span(span_begin + p, p);
    AsyncCommit();
  }
  for (int64_t span = span_begin; span < span_end; ++span) {
    const int rel = static_cast<int>(span - span_begin);
    const int buf = rel % kS;
    AsyncWait<kS - 2>();  // this thread's copies of span rel are done
    // Every thread's copies of span rel (and the mins operand of span rel - 1)
    // are visible; every thread is done with the stage of span rel - 1, which
    // the copy below refills, and with mins_b[rel % 2].
    __syncthreads();
    if (span + kS - 1 < span_end) copy_span(span + kS - 1, (rel + kS - 1) % kS);
    AsyncCommit();

    const uint8_t* const ws = smem_raw + buf * kStage;
    const uint8_t* const xs = ws + kBM * kSlot;
    // The span's work on the tile's first NF token fragments (with_live_fragments).
    auto span_body = [&](auto nf_c) {
      constexpr int NF = decltype(nf_c)::value;
      if constexpr (T == GgmlType::Q4_K) {
        if (rel > 0) apply_mins((rel - 1) & 1, nf_c);
        // Mins: sum_j m_j s_j = d_a * sum_j m_j S_j with S_j the integer sum of
        // slice j (s_j / d_a, exact after rounding), as ONE f16 product of k 16:
        // A[r][k] = m_{k % 8}, B[k][tok] = 64-multiple part of S_k (k < 8) / its
        // low 6 bits (k >= 8). Every operand (|S_j| <= 32 x 127) and partial sum
        // is an integer of at most 24 bits: exact. B (the same for every wave) is
        // made once per span here: thread 4 tk + pq makes token tk's k pair 2pq,
        // 2pq + 1 (its b0 / b1 registers); used in the next iteration.
#pragma unroll
        for (int tt = t; tt < NF * 32; tt += kThreads) {
          const uint8_t* const xt = xs + (tt / 4) * kActStride;
          const int pq = tt % 4;
          const float dt = LoadF32(xt);
          const float inv = dt != 0.0f ? __fdividef(1.0f, dt) : 0.0f;
          const int s0 = __float2int_rn(LoadF32(xt + 40 * (2 * pq) + 4) * inv);
          const int s1 = __float2int_rn(LoadF32(xt + 40 * (2 * pq + 1) + 4) * inv);
          mins_b[rel & 1][tt] = make_uint2(HalfPair(s0 - (s0 & 63), s1 - (s1 & 63)), HalfPair(s0 & 63, s1 & 63));
          if (pq == 0) mins_da[rel & 1][tt / 4] = dt;
        }
      }
      int ci[NF][4];
#pragma unroll
      for (int i = 0; i < NF; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) ci[i][e] = 0;
      float dr[2];

      if constexpr (T == GgmlType::Q4_K) {
        // This lane's rows: h = 0 (row g) / 1 (row g + 8) of the wave's 16.
        const uint8_t* rp[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) rp[h] = ws + (wr + 8 * h + g) * kSlot;
        // d, dmin, then the 12 packed 6-bit scale / min bytes: sc / m of
        // sub-blocks 0..3 and 4..7 as four byte-vectors.
        uint32_t sc03[2], sc47[2], m03[2], m47[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4 head = *reinterpret_cast<const uint4*>(rp[h]);
          dr[h] = HalfBitsToFloat(static_cast<uint16_t>(head.x & 0xffffu));
          dm_prev[h] = HalfBitsToFloat(static_cast<uint16_t>(head.x >> 16));
          sc03[h] = head.y & 0x3F3F3F3Fu;
          m03[h] = head.z & 0x3F3F3F3Fu;
          sc47[h] = (head.w & 0x0F0F0F0Fu) | ((head.y >> 2) & 0x30303030u);
          m47[h] = ((head.w >> 4) & 0x0F0F0F0Fu) | ((head.z >> 2) & 0x30303030u);
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          uint2 qw[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) qw[h] = *reinterpret_cast<const uint2*>(rp[h] + 16 + 32 * c + 8 * q);
#pragma unroll
          for (int hi = 0; hi < 2; ++hi) {
            const int j = 2 * c + hi;  // sub-block (= activation slice) of the span
            mma::FragAI8 a;
            int sc[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              a.x[h] = (qw[h].x >> (4 * hi)) & 0x0F0F0F0Fu;
              a.x[2 + h] = (qw[h].y >> (4 * hi)) & 0x0F0F0F0Fu;
              sc[h] = static_cast<int>(((j < 4 ? sc03[h] : sc47[h]) >> (8 * (j & 3))) & 0xffu);
            }
#pragma unroll
            for (int i = 0; i < NF; ++i) {
              const uint2 bw = *reinterpret_cast<const uint2*>(xs + (8 * i + g) * kActStride + 40 * j + 8 + 8 * q);
              const mma::FragBI8 b{{bw.x, bw.y}};
              mma::FragCI8 cc{{0, 0, 0, 0}};
              mma::MmaI8(cc, a, b);
              ci[i][0] += sc[0] * cc.x[0];
              ci[i][1] += sc[0] * cc.x[1];
              ci[i][2] += sc[1] * cc.x[2];
              ci[i][3] += sc[1] * cc.x[3];
            }
          }
        }
        // The mins operand A of this span (applied next iteration): this lane's
        // m_{2q}, m_{2q+1} of rows g and g + 8, for k and k + 8 alike.
        const uint32_t mb = 2u * static_cast<uint32_t>(q & 1);
        am_prev[0] = BytePairHalf(q < 2 ? m03[0] : m47[0], mb);
        am_prev[1] = BytePairHalf(q < 2 ? m03[1] : m47[1], mb);
      } else {  // Q6_K: ql[128], qh[64], int8 scales[16], d
        // This lane's rows h = 0 (g) / 1 (g + 8): the span starts at byte m
        // (even) of the row's slot; words are read from the 4-byte aligned base
        // rb with a funnel shift of 16 bits when m % 4 == 2.
        const uint8_t* rb[2];
        uint32_t sh[2];
        uint32_t scw[2][4];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wr + 8 * h + g;
          const uint32_t m = (static_cast<uint32_t>(row0 + r) * static_cast<uint32_t>(row_bytes) +
                              static_cast<uint32_t>(span) * static_cast<uint32_t>(kSpan)) & 15u;
          rb[h] = ws + r * kSlot + (m & 12u);
          sh[h] = (m & 2u) * 8u;
#pragma unroll
          for (int w = 0; w < 4; ++w) scw[h][w] = ShiftedWord(rb[h] + 192 + 4 * w, sh[h]);
          dr[h] = HalfBitsToFloat(*reinterpret_cast<const uint16_t*>(rb[h] + (m & 2u) + 208));
        }
        // One 128-value half at a time (not unrolled: the whole span's loads
        // hoisted at once would spill); its 8 scale bytes by selects.
#pragma unroll 1
        for (int hh = 0; hh < 2; ++hh) {
          uint32_t sch[2][2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            sch[h][0] = hh != 0 ? scw[h][2] : scw[h][0];
            sch[h][1] = hh != 0 ? scw[h][3] : scw[h][1];
          }
#pragma unroll 1
          for (int s = 0; s < 2; ++s) {  // 16-value unit within each 32-slice
            const int o = 4 * q + 16 * s;
            uint32_t qh[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) qh[h] = ShiftedWord(rb[h] + 128 + 32 * hh + o, sh[h]);
#pragma unroll
            for (int p = 0; p < 2; ++p) {
              uint32_t ql[2];
#pragma unroll
              for (int h = 0; h < 2; ++h) ql[h] = ShiftedWord(rb[h] + 64 * hh + 32 * p + o, sh[h]);
#pragma unroll
              for (int nib = 0; nib < 2; ++nib) {
                const int qq = p + 2 * nib;  // quarter of the half: slice j = 4 hh + qq
                const int j = 4 * hh + qq;
                mma::FragAI8 a;
                int sc[2];
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                  const uint32_t lo = (ql[h] >> (4 * nib)) & 0x0F0F0F0Fu;
                  const uint32_t hi = ((qh[h] >> (2 * qq)) & 0x03030303u) << 4;
                  a.x[h] = Minus32(lo | hi);
                  a.x[2 + h] = 0;
                  // Scale byte 8 hh + 2 qq + s: word qq / 2 of the half (a constant index).
                  sc[h] = static_cast<int>(static_cast<int8_t>((sch[h][qq >> 1] >> (8 * (2 * (qq & 1) + s))) & 0xffu));
                }
#pragma unroll
                for (int i = 0; i < NF; ++i) {
                  const uint32_t bw =
                      *reinterpret_cast<const uint32_t*>(xs + (8 * i + g) * kActStride + 40 * j + 8 + 16 * s + 4 * q);
                  const mma::FragBI8 b{{bw, 0u}};
                  mma::FragCI8 cc{{0, 0, 0, 0}};
                  mma::MmaI8K16(cc, a, b);
                  ci[i][0] += sc[0] * cc.x[0];
                  ci[i][1] += sc[0] * cc.x[1];
                  ci[i][2] += sc[1] * cc.x[2];
                  ci[i][3] += sc[1] * cc.x[3];
                }
              }
            }
          }
        }
      }
      // The span's float scales, once: acc += d_a * d * (int32 sum) (Q4_K: its
      // mins term follows next iteration).
#pragma unroll
      for (int i = 0; i < NF; ++i) {
        const float da0 = LoadF32(xs + (8 * i + 2 * q) * kActStride);
        const float da1 = LoadF32(xs + (8 * i + 2 * q + 1) * kActStride);
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][e] += ((e & 1 ? da1 : da0) * dr[e >> 1]) * static_cast<float>(ci[i][e]);
      }
    };
    with_live_fragments(span_body);
  }
  AsyncWaitAll();  // no copy may outlive the block (only empty groups remain)
  if constexpr (T == GgmlType::Q4_K) {
    __syncthreads();  // the last span's mins operand is complete
    if (span_end > span_begin) {
      with_live_fragments([&](auto nf_c) { apply_mins(static_cast<int>(span_end - span_begin - 1) & 1, nf_c); });
    }
  }

  float* const y = part.y;
#pragma unroll
  for (int i = 0; i < kFT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int tok = tok0 + 8 * i + 2 * q + (e & 1);
      const int64_t r = row0 + wr + 8 * (e >> 1) + g;
      if (tok < n && r < rows) {
        float* p = y + static_cast<int64_t>(tok) * rows + r;
        if (accumulate) {
          atomicAdd(p, acc[i][e]);
        } else {
          *p = acc[i][e];
        }
      }
    }
}

// The K split with the least modelled time (fit to the H100 sweep of
// `bench_gpu_kernels mmq`, 2026-11-26, in units of one span of one block
// alone on an SM): with s splits of `per` spans, an SM holding k blocks of the
// launch takes per * F(k) (F(1) = 1; two resident blocks share the SM: F(2) =
// 1.7; further blocks queue in pairs) plus 0.8 per pair of blocks (pipeline
// fill, epilogue), plus kSplitCost a split (zeroing, atomics). 0.05 fit the
// first kernel; the row-owning one spends less per span, so a split's fixed
// cost weighs more: at 0.05 gate/up took 4 splits at 16..64 tokens where none
// was 6-7% faster (sweep of 09:25 UTC: n = 32 41.4 vs 44.3 us). With 0.4
// (the sweep's best or within 2% at every shape of the Llama-3-8B layers):
// none for gate/up to 64 tokens, 2 at 96-128; 4 for Q/K/V and O (was 8 to 64
// tokens); 8 for 4096 x 14336 and the 1024-row V.
constexpr double kSplitCost = 0.4;
// One resident block a SM (the 128-token tile): an SM takes per * k, plus 0.8
// a block.
int64_t AutoSplits(int64_t tiles, int64_t n_spans, int64_t sms, int res) {
  auto f = [res](int64_t k) {
    if (res == 1) return static_cast<double>(k);
    return k <= 1 ? 1.0 : 1.7 * static_cast<double>(k / 2) + (k % 2 != 0 ? 1.0 : 0.0);
  };
  int64_t best = 1;
  double best_cost = 1e30;
  for (int64_t s = 1; s <= std::max<int64_t>(1, n_spans / 2); ++s) {
    const int64_t per = (n_spans + s - 1) / s, real = (n_spans + per - 1) / per;
    if (real != s) continue;  // the same launch as a smaller s
    const int64_t kmax = (tiles * s + sms - 1) / sms;
    const double cost = static_cast<double>(per) * f(kmax) + 0.8 * static_cast<double>((kmax + res - 1) / res) +
                        kSplitCost * static_cast<double>(s - 1);
    if (cost < best_cost - 1e-9) {
      best_cost = cost;
      best = s;
    }
  }
  return best;
}

template <GgmlType T, int BN>
constexpr size_t TileSmem() {
  return static_cast<size_t>(Stages(T, BN)) * StageBytes(T, BN);
}
template <GgmlType T, int BN>
bool SetTileSmem() {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(&GemmMmqKernel<T, BN, Stages(T, BN)>),
                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(TileSmem<T, BN>())) == cudaSuccess;
}
// The dynamic shared-memory limit of every instantiation, set once. Called by
// MatMulMmqSupported (which the backend asks at weight load) as well as by the
// launches, so that a launch inside a graph capture (decode steps of up to 8
// tokens are captured) never makes the first, non-stream runtime call.
void PrepareKernels() {
  static const bool ok = SetTileSmem<GgmlType::Q4_K, 16>() & SetTileSmem<GgmlType::Q4_K, 32>() &
                         SetTileSmem<GgmlType::Q4_K, 64>() & SetTileSmem<GgmlType::Q4_K, 128>() &
                         SetTileSmem<GgmlType::Q6_K, 16>() & SetTileSmem<GgmlType::Q6_K, 32>() &
                         SetTileSmem<GgmlType::Q6_K, 64>() & SetTileSmem<GgmlType::Q6_K, 128>();
  (void)ok;  // a failure shows as the launch's error
}

template <GgmlType T, int BN>
void LaunchTile(const GemmParts& parts, int64_t cols, const void* xq, int n, Stream s) {
  static_assert(Stages(T, BN) >= 2);
  constexpr size_t kSmem = TileSmem<T, BN>();
  const GemmConfig cfg = GetGemmConfig();
  const auto kernel = &GemmMmqKernel<T, BN, Stages(T, BN)>;
  const int64_t row_bytes = cols / 256 * SpanBytes(T);
  const unsigned tok_tiles = Blocks(n, BN), row_tiles = static_cast<unsigned>(parts.tiles);
  const int64_t n_spans = cols / 256;
  // K split: forced (GemmConfig::splits, or blocks_per_sm as a fill target),
  // else AutoSplits; at least 2 spans per split.
  const int64_t tiles = static_cast<int64_t>(tok_tiles) * row_tiles;
  const int64_t sms = MultiprocessorCount();
  int64_t splits = 1;
  if (cfg.splits > 0) {
    splits = cfg.splits;
  } else if (cfg.blocks_per_sm > 0) {
    const int64_t target = sms * cfg.blocks_per_sm;
    splits = std::min(tiles >= target ? 1 : (target + tiles - 1) / tiles, n_spans / 2);
  } else {
    splits = AutoSplits(tiles, n_spans, sms, BlocksPerSm(BN));
  }
  splits = std::max<int64_t>(1, std::min(splits, n_spans));
  const int64_t per = (n_spans + splits - 1) / splits;
  splits = (n_spans + per - 1) / per;
  if (splits > 1) LaunchZeroParts(parts, n, s);
  PrepareKernels();
  const dim3 grid(tok_tiles, row_tiles, static_cast<unsigned>(splits));
  kernel<<<grid, kThreads, kSmem, ToStream(s)>>>(parts, cols, row_bytes, static_cast<const uint8_t*>(xq), n,
                                                 static_cast<int>(per), splits > 1);
}

template <GgmlType T>
void LaunchType(const GemmParts& parts, int64_t cols, const void* xq, int n, int bn, Stream s) {
  switch (bn) {
    case 16: return LaunchTile<T, 16>(parts, cols, xq, n, s);
    case 32: return LaunchTile<T, 32>(parts, cols, xq, n, s);
    case 64: return LaunchTile<T, 64>(parts, cols, xq, n, s);
    default: return LaunchTile<T, 128>(parts, cols, xq, n, s);
  }
}

// Automatic choice (GemmConfig::narrow = 0): the (type, n) where MMQ measured
// faster than the previous default on the Llama-3-8B Q4_K_M layer shapes
// (H100, `bench_gpu_kernels mmq`, 2026-11-26 06:36 UTC). Index: n <= 16, 32,
// 64, 96, 128. Q4_K: 1.26-1.5x v5 at every shape and n. Q6_K: 4096x14336
// 1.02-1.1x (1.4x at 64 against v4) and 1024x4096 1.06-1.48x; quantizing the
// input costs 2-4 us where no producer does it in its own pass.
constexpr bool kAutoQ4K[5] = {true, true, true, true, true};
constexpr bool kAutoQ6K[5] = {true, true, true, true, true};
bool AutoTakes(GgmlType t, int n) {
  const int b = n <= 16 ? 0 : n <= 32 ? 1 : n <= 64 ? 2 : n <= 96 ? 3 : 4;
  return t == GgmlType::Q4_K ? kAutoQ4K[b] : kAutoQ6K[b];
}
#endif  // RF_GPU_CUDA

#if defined(RF_GPU_CUDA)
// Automatic token tile for n tokens and a launch of row_tiles 128-row tiles.
// A partial last tile along tokens costs only its live fragments
// (with_live_fragments). The 128-token tile (one block per SM) wins where it
// runs 10-12 fragments (n = 65..96) on launches of >= 32 row tiles, and for
// Q6_K (heavier decode, shared by more tokens) up to 128; Q4_K at 97..128 runs
// a 64-token tile plus a partial one (14-16 fragments a wave lose to the
// latency of 8 warps an SM); the 1024-row Q6_K V (8 row tiles) keeps 64.
// H100, `bench_gpu_kernels mmq 24,32,40,48,64,80,96,112,128`, 2026-11-26
// 13:17 UTC, us, t64 (+ partial) -> t128 at n = 80 / 96 / 112 / 128:
//   gate/up Q4_K 100.9 / 107.0 / 112.7 / 118.4 -> 92.3 / 105.2 / 121.2 / 133.5
//   down Q4_K     59.2 /  60.3 /  60.0 /  59.2 -> 45.4 /  52.3 /  59.2 /  64.2
//   O Q4_K        23.0 /  23.1 /  23.1 /  23.8 -> 20.9 /  23.0 /  25.6 /  27.5
//   Q/K/V Q4_K    31.3 /  33.9 /  32.5 /  33.0 -> 29.9 /  33.6 /  37.6 /  41.6
//   down Q6_K     92.9 /  93.1 /  93.2 /  94.0 -> 61.9 /  71.7 /  78.0 /  85.0
//   V Q6_K        14.1 /  14.0 /  14.1 /  15.0 -> 14.7 /  16.3 /  17.2 /  18.8
// (the previous rule, three 32-token tiles for Q4_K at 65..96: gate/up 99.9 /
// 110.2, down 60.7 / 56.1).
constexpr int kAutoTile = 1;  // MmqTile's "automatic": AutoTile decides at launch
constexpr int kWideMinRowTiles = 32;
int AutoTile(GgmlType t, int n, int row_tiles) {
  if (n <= 16) return 16;
  if (n <= 32) return 32;
  const bool wide = row_tiles >= kWideMinRowTiles && n > 64 && (t == GgmlType::Q6_K || n <= 96);
  return wide ? 128 : 64;
}
#endif  // RF_GPU_CUDA

// The forced token tile for these arguments, kAutoTile for the automatic
// choice (AutoTile, made at launch, where the row tiles are known), 0 = MMQ
// cannot take them. `chosen`: also require the selection (GemmConfig::narrow
// 3, or 0 and the auto table); without it only the arguments count (a launch
// honours what the caller took, even if the config changed in between).
int MmqTile(GgmlType t, const void* w, int64_t cols, int n, bool chosen) {
#if defined(RF_GPU_CUDA)
  // cols bound: a 128-row tile's bytes stay under 2^28 (GemmMmqKernel's offsets).
  if (!MmqType(t) || n <= 0 || n > kMmqMaxTokens || cols <= 0 || cols % 256 != 0 || cols > (int64_t{1} << 20) ||
      reinterpret_cast<uintptr_t>(w) % 16 != 0) {
    return 0;
  }
  const GemmConfig cfg = GetGemmConfig();
  const int auto_tile = kAutoTile;
  if (cfg.narrow == 3) {
    const int f = cfg.token_tile;
    return f == 16 || f == 32 || f == 64 || f == 128 ? f : auto_tile;
  }
  if (!chosen || (cfg.narrow == 0 && cfg.token_tile == 0 && AutoTakes(t, n))) return auto_tile;
  return 0;
#else
  (void)t, (void)w, (void)cols, (void)n, (void)chosen;
  return 0;  // no int8 tile op on AMD yet (kernels/mma_amd.h)
#endif
}

}  // namespace

bool MatMulMmqSupported(GgmlType type) {
#if defined(RF_GPU_CUDA)
  if (MmqType(type)) PrepareKernels();
  return MmqType(type);
#else
  (void)type;
  return false;
#endif
}

bool MatMulMmqTakes(GgmlType type, const void* w, int64_t cols, int n) {
  return MmqTile(type, w, cols, n, true) != 0;
}

size_t MatMulMmqScratchBytes(int64_t cols, int n) {
  return static_cast<size_t>(n) * static_cast<size_t>((cols + 31) / 32) * sizeof(ActQ8);
}

void LaunchMatMulMmqGroup(GgmlType type, int64_t cols, const void* xq, int n, const MatVecPart* parts, int n_parts,
                          Stream s) {
  if (n <= 0 || n_parts <= 0) return;
  int bn = 0;
  GemmParts p;
  for (int i = 0; i < n_parts && p.count < GemmParts::kMax; ++i) {
    if (parts[i].rows <= 0) continue;
    const int b = MmqTile(type, parts[i].w, cols, n, false);
    if (b == 0 || (bn != 0 && b != bn)) return;  // callers ask MatMulMmqTakes of every part first
    bn = b;
    p.w[p.count] = static_cast<const uint8_t*>(parts[i].w);
    p.y[p.count] = parts[i].y;
    p.rows[p.count] = parts[i].rows;
    p.tile_begin[p.count] = p.tiles;
    p.tiles += static_cast<int>((parts[i].rows + kBM - 1) / kBM);
    ++p.count;
  }
  if (p.count == 0) return;
#if defined(RF_GPU_CUDA)
  if (bn == kAutoTile) bn = AutoTile(type, n, p.tiles);
  if (type == GgmlType::Q4_K) {
    LaunchType<GgmlType::Q4_K>(p, cols, xq, n, bn, s);
  } else {
    LaunchType<GgmlType::Q6_K>(p, cols, xq, n, bn, s);
  }
#else
  (void)xq, (void)s;
#endif
}

}  // namespace rocmforge::gpu
