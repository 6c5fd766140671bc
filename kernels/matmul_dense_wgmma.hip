// Dense f16 GEMM for prefill on Hopper (sm_90a): y[n][rows] = x16[n][cols] .
// w16[rows][cols]^T with f32 accumulation, plus the fused gate / up SwiGLU
// epilogue; the same contract as LaunchGemmF16 / LaunchGemmF16SwiGLU
// (kernels/matmul_dense.hip), which call in here (kernels/matmul_dense_wgmma.h).
//
// A block owns BM = 128 tokens x BN = 256, 224 or 128 weight rows (PlanFor:
// a wave cost model fitted to H100 timings picks the tile and any K split)
// and walks K in steps of 64 halves (128 bytes). Three warpgroups: warpgroup 0
// is the producer (its registers given back by setmaxnreg; one thread issues
// the tensor-memory-access copies of each step's two tiles into a ring of 4
// stages, 6 for BN = 128, completing on the stage's `full` mbarrier),
// warpgroups 1 and 2 the consumers (64 tokens each: wgmma m64nBNk16 with both
// operands K-major in shared memory, 128-byte swizzle, f32 accumulators in
// registers). A consumer warp arrives on the stage's `empty` mbarrier once the
// products that read it are done (wgmma.wait_group 1 after the next step's
// products are issued), which lets the producer refill it.
//
// The tensor maps (cuTensorMapEncodeTiled, fetched from the driver through the
// runtime: no -lcuda) describe x16 as {cols, n} and w16 as {cols, rows}, boxes
// of {64, 128} / {64, BN}; boxes past n, rows or cols are zero-filled by the
// copy engine, so any n, rows and cols % 8 == 0 work (row pitch a multiple of
// 16 bytes). Results are stored guarded from the accumulator layout (warp w of
// the warpgroup, lane l: tokens 16w + l/4 and + 8, weight rows 8j + 2(l%4) and
// + 1), so the gate / up pair of an FFN column sits in one thread; the SwiGLU
// epilogue by default goes through shared memory (kEpiSwiGLUStaged).
//
// Grid: x = token tiles (fastest: blocks running together share a weight tile
// through L2), y = row tiles, z = K splits (grids short of one wave; partial
// sums meet in y through atomicAdd after a memset, plain epilogue only).
//
// Device code only in the sm_90a pass (__CUDA_ARCH_FEAT_SM90_ALL); on AMD and
// in other passes the launchers report "not taken".
#include "kernels/matmul_dense_wgmma.h"

#include <algorithm>
#include <cstdlib>

#include "kernels/launch_util.h"
#include "kernels/mbarrier_device.h"
#include "kernels/swiglu_device.h"

#if defined(RF_GPU_CUDA)
#include <cuda.h>
#include <cudaTypedefs.h>
#endif

namespace rocmforge::gpu {

#if defined(RF_GPU_CUDA)
namespace {

constexpr int kThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kBM = 128;       // tokens per block (64 per consumer warpgroup)
constexpr int kBK = 64;        // halves of K per step: one 128-byte swizzle row
constexpr int kStagesOf(int bn) { return bn > 128 ? 4 : 6; }
constexpr uint32_t kABytes = kBM * kBK * 2;
template <int BN>
constexpr uint32_t StageBytes() {
  return kABytes + BN * kBK * 2;
}
// Stages, 1 KiB of slack to align the ring to 1 KiB (the swizzle's period),
// then the 2 x stages mbarriers.
template <int BN>
constexpr size_t WgSmemBytes() {
  return static_cast<size_t>(kStagesOf(BN)) * StageBytes<BN>() + 1024 + 16 * kStagesOf(BN);
}

// Epilogues: y[n][rows] (or += with K splits); SwiGLU stored from the
// accumulators directly (4- / 2-byte stores, 8 rows a warp instruction); or
// staged through shared memory (free after the main loop) a consumer
// warpgroup's 64 x BN/2 outputs at a time, then written as whole rows with
// 16-byte (f32) / 8-byte (f16) stores.
constexpr int kEpiPlain = 0, kEpiSwiGLU = 1, kEpiSwiGLUStaged = 2;

struct WgSwiGLU {
  uint16_t* out16 = nullptr;
  float* gate = nullptr;
  float* up = nullptr;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void TmaLoad2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
// K-major operand, 128-byte swizzle: start >> 4, LBO 1 (unused), SBO 1024 B
// (8 rows of 128 B) >> 4, layout type 1 (bits 62-63). Stage buffers are 1 KiB
// aligned (base offset 0).
__device__ __forceinline__ uint64_t SmemDesc(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

// D (64 x 256, f32, this warpgroup) += A (64 x 16, shared, `a`) . B (256 x 16, shared, `b`)^T,
// both K-major f16 through 128-byte-swizzle descriptors.
__device__ __forceinline__ void WgmmaF16M64N256K16(float (&d)[128], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
      "{"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"
      "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"
      "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"
      "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,"
      "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(a), "l"(b), "r"(1));
}

// D (64 x 128, f32, this warpgroup) += A (64 x 16, shared, `a`) . B (128 x 16, shared, `b`)^T,
// both K-major f16 through 128-byte-swizzle descriptors.
__device__ __forceinline__ void WgmmaF16M64N128K16(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "r"(1));
}


// D (64 x 224, f32, this warpgroup) += A (64 x 16, shared, `a`) . B (224 x 16, shared, `b`)^T,
// both K-major f16 through 128-byte-swizzle descriptors.
__device__ __forceinline__ void WgmmaF16M64N224K16(float (&d)[112], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %114, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n224k16.f32.f16.f16 "
      "{"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"
      "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"
      "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"
      "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111"
      "}, %112, %113, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111])
      : "l"(a), "l"(b), "r"(1));
}

template <int BN>
__device__ __forceinline__ void WgmmaStep(float (&d)[BN / 2], uint64_t a, uint64_t b) {
  if constexpr (BN == 256) {
    WgmmaF16M64N256K16(d, a, b);
  } else if constexpr (BN == 224) {
    WgmmaF16M64N224K16(d, a, b);
  } else {
    WgmmaF16M64N128K16(d, a, b);
  }
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <int BN, int kEpi>
__global__ void __launch_bounds__(kThreads, 1)
    GemmWgmmaKernel(const __grid_constant__ CUtensorMap tm_x, const __grid_constant__ CUtensorMap tm_w, int rows,
                    int n, int n_steps, int steps_per_split, float* __restrict__ y, bool accumulate, WgSwiGLU epi) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kSt = kStagesOf(BN);
  constexpr uint32_t kStage = StageBytes<BN>();
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) + 1023u) & ~1023u;
  const uint32_t bars = base + kSt * kStage;  // full[s] at bars + 8s, empty[s] at bars + 8 (kSt + s)
  const int wg = static_cast<int>(threadIdx.x / 128);
  const int tok0 = static_cast<int>(blockIdx.x) * kBM;
  const int row0 = static_cast<int>(blockIdx.y) * BN;
  const int step_begin = static_cast<int>(blockIdx.z) * steps_per_split;
  const int step_end = min(n_steps, step_begin + steps_per_split);
  const int total = step_end - step_begin;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kSt; ++s) {
      MbarInit(bars + 8 * s, 1);               // the producer's arrive + the copies' bytes
      MbarInit(bars + 8 * (kSt + s), 8);       // one arrive per consumer warp
    }
    MbarInitFence();
  }
  __syncthreads();

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (threadIdx.x == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tm_x)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tm_w)) : "memory");
      int s = 0;
      uint32_t phase = 0;
      for (int it = 0; it < total; ++it) {
        // A fresh barrier counts its (complete) previous phase as parity 1:
        // the first round passes at once.
        MbarWait(bars + 8 * (kSt + s), phase ^ 1u);
        const uint32_t full = bars + 8 * s;
        MbarExpectTx(full, kStage);
        const int k0 = (step_begin + it) * kBK;
        const uint32_t dst = base + s * kStage;
        TmaLoad2d(dst, &tm_x, k0, tok0, full);
        TmaLoad2d(dst + kABytes, &tm_w, k0, row0, full);
        if (++s == kSt) {
          s = 0;
          phase ^= 1u;
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int cw = wg - 1;  // consumer: tokens 64 cw .. 64 cw + 63 of the block
    float d[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) d[i] = 0.0f;
    const uint32_t lane = threadIdx.x % 32;
    int s = 0, prev = 0;
    uint32_t phase = 0;
    for (int it = 0; it < total; ++it) {
      MbarWait(bars + 8 * s, phase);
      const uint32_t a = base + s * kStage + cw * (64 * 128);
      const uint64_t da = SmemDesc(a), db = SmemDesc(base + s * kStage + kABytes);
      asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) WgmmaStep<BN>(d, da + 2 * kk, db + 2 * kk);  // +32 bytes a k16
      asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      // The previous step's products are done: its stage may be refilled.
      if (it > 0 && lane == 0) MbarArrive(bars + 8 * (kSt + prev));
      prev = s;
      if (++s == kSt) {
        s = 0;
        phase ^= 1u;
      }
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");

    const int w = static_cast<int>((threadIdx.x / 32) % 4);
    const int tok_a = tok0 + 64 * cw + 16 * w + static_cast<int>(lane / 4);
    const int col_a = row0 + 2 * static_cast<int>(lane % 4);
    if constexpr (kEpi == kEpiSwiGLUStaged) {
      // Both consumers are past their last products (every stage read), and
      // every copy has landed: the ring is free.
      asm volatile("bar.sync 1, 256;\n" ::: "memory");
      constexpr int kHalf = BN / 2, kSLd = kHalf + 4;  // kSLd % 32 == 4: conflict-free writes
      static_assert(2 * 64 * kSLd * 4 <= kStagesOf(BN) * StageBytes<BN>(), "staging must fit the ring");
      const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
      float* const stage = reinterpret_cast<float*>(smem_raw + (base - raw)) + cw * 64 * kSLd;
      const int half_rows = rows / 2;
      const int col0 = row0 / 2;
      const int t = static_cast<int>(threadIdx.x % 128);
      const bool vec = half_rows % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(epi.out16) % 8 == 0 &&
                       (epi.gate == nullptr || reinterpret_cast<uintptr_t>(epi.gate) % 16 == 0) &&
                       (epi.up == nullptr || reinterpret_cast<uintptr_t>(epi.up) % 16 == 0);
      const int bar_id = 2 + cw;
      for (int pass = 0; pass < 3; ++pass) {
        float* const dst = pass == 0 ? y : pass == 1 ? epi.gate : epi.up;
        if (dst == nullptr) continue;  // uniform
        if (pass > 0) asm volatile("bar.sync %0, 128;\n" ::"r"(bar_id) : "memory");  // the last pass's reads are done
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const float g = d[4 * j + 2 * h], u = d[4 * j + 2 * h + 1];
            const float v = pass == 0 ? SiluMul(g, u) : pass == 1 ? g : u;
            stage[(16 * w + static_cast<int>(lane / 4) + 8 * h) * kSLd + 4 * j + static_cast<int>(lane % 4)] = v;
          }
        }
        asm volatile("bar.sync %0, 128;\n" ::"r"(bar_id) : "memory");
        constexpr int kQuads = kHalf / 4;  // 16-byte chunks a staged row
        for (int e = t; e < 64 * kQuads; e += 128) {
          const int m = e / kQuads, c = 4 * (e % kQuads);
          const int tok = tok0 + 64 * cw + m, col = col0 + c;
          if (tok >= n || col >= half_rows) continue;
          const float4 v = *reinterpret_cast<const float4*>(stage + m * kSLd + c);
          const int64_t at = static_cast<int64_t>(tok) * half_rows + col;
          if (vec) {
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
            for (int k = 0; k < 4 && col + k < half_rows; ++k) {
              dst[at + k] = vs[k];
              if (pass == 0) epi.out16[at + k] = __half_as_ushort(__float2half_rn(vs[k]));
            }
          }
        }
      }
    } else if constexpr (kEpi == kEpiSwiGLU) {
      const int half_rows = rows / 2;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int tok = tok_a + 8 * h;
        if (tok >= n) continue;
        const int64_t at0 = static_cast<int64_t>(tok) * half_rows;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
          const int r = col_a + 8 * j;  // gate row (even), r + 1 its up
          if (r + 1 >= rows) continue;
          const float g = d[4 * j + 2 * h], u = d[4 * j + 2 * h + 1];
          const float o = SiluMul(g, u);
          const int64_t i = at0 + r / 2;
          if (epi.gate != nullptr) epi.gate[i] = g;
          if (epi.up != nullptr) epi.up[i] = u;
          y[i] = o;
          epi.out16[i] = __half_as_ushort(__float2half_rn(o));
        }
      }
    } else {
      const bool vec2 = rows % 2 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int tok = tok_a + 8 * h;
        if (tok >= n) continue;
        float* const yr = y + static_cast<int64_t>(tok) * rows;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
          const int r = col_a + 8 * j;
          if (r >= rows) continue;
          const float v0 = d[4 * j + 2 * h], v1 = d[4 * j + 2 * h + 1];
          if (accumulate) {
            if (vec2) {
              atomicAdd(reinterpret_cast<float2*>(yr + r), make_float2(v0, v1));
            } else {
              atomicAdd(yr + r, v0);
              if (r + 1 < rows) atomicAdd(yr + r + 1, v1);
            }
          } else if (vec2) {
            *reinterpret_cast<float2*>(yr + r) = make_float2(v0, v1);
          } else {
            yr[r] = v0;
            if (r + 1 < rows) yr[r + 1] = v1;
          }
        }
      }
    }
  }
#else
  (void)tm_x, (void)tm_w, (void)rows, (void)n, (void)n_steps, (void)steps_per_split, (void)y, (void)accumulate,
      (void)epi;
#endif
}

using EncodeTiledFn = PFN_cuTensorMapEncodeTiled_v12000;
EncodeTiledFn Encoder() {
  static const EncodeTiledFn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return static_cast<EncodeTiledFn>(nullptr);
    }
    return reinterpret_cast<EncodeTiledFn>(p);
  }();
  return fn;
}

// A row-major f16 matrix [outer][inner] as a 2D tensor map, boxes of 64 x box_outer, 128-byte swizzle.
bool MakeMap(CUtensorMap* m, const void* base, int64_t inner, int64_t outer, int box_outer) {
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(inner), static_cast<cuuint64_t>(outer)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(inner) * 2};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(kBK), static_cast<cuuint32_t>(box_outer)};
  const cuuint32_t elem[2] = {1, 1};
  return Encoder()(m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<void*>(base), dims, strides, box, elem,
                   CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int BN, int kEpi>
bool EnsureSmem() {
  static const bool ok = [] {
    const bool set = cudaFuncSetAttribute(reinterpret_cast<const void*>(&GemmWgmmaKernel<BN, kEpi>),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(WgSmemBytes<BN>())) == cudaSuccess;
    if (!set) (void)cudaGetLastError();
    return set;
  }();
  return ok;
}

bool Suits(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, int n) {
  return DenseWgmmaAvailable() && n > 0 && rows > 0 && cols > 0 && cols % 8 == 0 &&
         rows < (int64_t{1} << 31) - 256 && cols < (int64_t{1} << 31) &&
         reinterpret_cast<uintptr_t>(w16) % 16 == 0 && reinterpret_cast<uintptr_t>(x16) % 16 == 0;
}

template <int BN, int kEpi>
bool Launch(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n, int splits,
            Stream s, WgSwiGLU epi) {
  if (!EnsureSmem<BN, kEpi>()) return false;
  CUtensorMap tx, tw;
  if (!MakeMap(&tx, x16, cols, n, kBM) || !MakeMap(&tw, w16, cols, rows, BN)) return false;
  const int n_steps = static_cast<int>((cols + kBK - 1) / kBK);
  int per = (n_steps + splits - 1) / splits;
  splits = (n_steps + per - 1) / per;
  if (splits > 1) (void)cudaMemsetAsync(y, 0, sizeof(float) * static_cast<size_t>(n) * rows, ToStream(s));
  const dim3 grid(Blocks(n, kBM), Blocks(rows, BN), static_cast<unsigned>(splits));
  GemmWgmmaKernel<BN, kEpi><<<grid, kThreads, WgSmemBytes<BN>(), ToStream(s)>>>(
      tx, tw, static_cast<int>(rows), n, n_steps, per, y, splits > 1, epi);
  return true;
}

}  // namespace

bool DenseWgmmaAvailable() {
  static const bool ok = [] {
    int dev = 0;
    cudaDeviceProp p{};
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return p.major == 9 && Encoder() != nullptr;
  }();
  return ok;
}

namespace {

// Row tile override (SetDenseWgmmaTile; RF_DENSE_WGMMA_TILE=128|224|256 in the environment at start-up).
int InitialTile() {
  const char* e = std::getenv("RF_DENSE_WGMMA_TILE");
  const int v = e != nullptr ? std::atoi(e) : 0;
  return v == 128 || v == 224 || v == 256 ? v : 0;
}
int g_tile = InitialTile();
// SwiGLU epilogue staged through shared memory (SetDenseWgmmaStagedSwiGLU;
// RF_DENSE_WGMMA_STAGED=0|1 in the environment at start-up).
constexpr bool kStagedDefault = true;
bool InitialStaged() {
  const char* e = std::getenv("RF_DENSE_WGMMA_STAGED");
  return e != nullptr ? std::atoi(e) != 0 : kStagedDefault;
}
bool g_staged = InitialStaged();

struct Plan {
  int bn = 256;
  int splits = 1;
};

// Row tile and K splits by a cost model fitted to H100 timings
// (`bench_gpu_kernels dense_wgmma`, 2026-11-26): whole waves of one block per
// SM, each costing the tile's rows times its K steps + 10 steps of fixed cost
// (pipeline fill, epilogue); K splits add 28 steps (the memset, the atomics)
// and must win by 10% more; 128-row tiles cost 12% and 224-row tiles 3% more
// per row than 256-row ones. K splits keep >= 512 values of K each.
Plan PlanFor(int64_t rows, int64_t cols, int n, bool may_split, int splits_hint) {
  const int64_t sms = MultiprocessorCount();
  const int64_t tok = Blocks(n, kBM), steps = (cols + kBK - 1) / kBK;
  const int64_t max_splits = may_split ? std::max<int64_t>(1, std::min<int64_t>(16, steps * kBK / 512)) : 1;
  Plan best;
  double best_cost = 0.0;
  for (int bn : {256, 224, 128}) {
    if (g_tile != 0 && bn != g_tile) continue;
    const int64_t tiles = tok * Blocks(rows, bn);
    const double eff = bn == 128 ? 1.12 : bn == 224 ? 1.03 : 1.0;
    for (int64_t sp = 1; sp <= max_splits; ++sp) {
      if (splits_hint > 0 && sp != std::min<int64_t>(splits_hint, steps)) continue;
      const int64_t per = (steps + sp - 1) / sp;
      const int64_t waves = (tiles * sp + sms - 1) / sms;
      const double cost = static_cast<double>(waves) * bn * eff * static_cast<double>(per + 10 + (sp > 1 ? 28 : 0)) *
                          (sp > 1 ? 1.1 : 1.0);
      if (best_cost == 0.0 || cost < best_cost) {
        best_cost = cost;
        best = Plan{bn, static_cast<int>(sp)};
      }
    }
  }
  if (best_cost == 0.0) best = Plan{g_tile != 0 ? g_tile : 256, static_cast<int>(std::min<int64_t>(splits_hint, steps))};
  return best;
}

template <int kEpi>
bool LaunchPlan(const Plan& p, const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n,
                Stream s, WgSwiGLU epi) {
  switch (p.bn) {
    case 128:
      return Launch<128, kEpi>(w16, rows, cols, x16, y, n, p.splits, s, epi);
    case 224:
      return Launch<224, kEpi>(w16, rows, cols, x16, y, n, p.splits, s, epi);
    default:
      return Launch<256, kEpi>(w16, rows, cols, x16, y, n, p.splits, s, epi);
  }
}

}  // namespace

void SetDenseWgmmaStagedSwiGLU(bool on) { g_staged = on; }
bool GetDenseWgmmaStagedSwiGLU() { return g_staged; }
void SetDenseWgmmaTile(int bn) { g_tile = bn == 128 || bn == 224 || bn == 256 ? bn : 0; }
int GetDenseWgmmaTile() { return g_tile; }

bool LaunchGemmF16Wgmma(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n,
                        int splits_hint, Stream s) {
  if (!Suits(w16, rows, cols, x16, n)) return false;
  return LaunchPlan<kEpiPlain>(PlanFor(rows, cols, n, true, splits_hint), w16, rows, cols, x16, y, n, s, WgSwiGLU{});
}

bool LaunchGemmF16SwiGLUWgmma(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* out,
                              uint16_t* out16, float* gate, float* up, int n, Stream s) {
  if (!Suits(w16, rows, cols, x16, n)) return false;
  const Plan p = PlanFor(rows, cols, n, false, 1);
  const WgSwiGLU e{out16, gate, up};
  return g_staged ? LaunchPlan<kEpiSwiGLUStaged>(p, w16, rows, cols, x16, out, n, s, e)
                  : LaunchPlan<kEpiSwiGLU>(p, w16, rows, cols, x16, out, n, s, e);
}

#else  // not NVIDIA: no wgmma

bool DenseWgmmaAvailable() { return false; }
void SetDenseWgmmaTile(int) {}
void SetDenseWgmmaStagedSwiGLU(bool) {}
bool GetDenseWgmmaStagedSwiGLU() { return false; }
int GetDenseWgmmaTile() { return 0; }
bool LaunchGemmF16Wgmma(const uint16_t*, int64_t, int64_t, const uint16_t*, float*, int, int, Stream) {
  return false;
}
bool LaunchGemmF16SwiGLUWgmma(const uint16_t*, int64_t, int64_t, const uint16_t*, float*, uint16_t*, float*, float*,
                              int, Stream) {
  return false;
}

#endif

}  // namespace rocmforge::gpu
