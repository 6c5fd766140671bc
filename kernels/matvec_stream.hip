// Batch-1 quantized matrix x vector fed by bulk copies (NVIDIA sm_90+):
// y[r] = sum_k W[r][k] x[k] with x quantized to int8 blocks (ActQ8). An
// option (MatVecConfig::stream = 1, RF_MATVEC_STREAM=1), off by default: it
// does not make a decode step faster on the H100 (below).
//
// Design: each warp owns a contiguous run of rows (a contiguous run of bytes:
// rows are stored one after the other) and streams it into its own ring of
// shared-memory slots with cp.async.bulk, one lane issuing a copy per slot,
// completing on the slot's mbarrier; no thread waits on a load and there is
// no block barrier anywhere. The grid is one wave (as many blocks as fit),
// every warp the same whole number of rows where the rows allow. The first
// slots are requested before the programmatic-dependent-launch wait: weights
// are constant, so copying them early into the block's own shared memory
// cannot change a result.
//
// Work layout: a unit is 32 lane items of the type (one a lane): a Q4_K / Q5_K
// pair of 32-element slices (64 weights, DotPairK), two Q6_K slices (lane and
// lane + 32), or one Q8_0 / Q4_0 block. Units are whole super-blocks (8 of
// Q4_K / Q5_K / Q6_K, 32 of Q8_0 / Q4_0), 16-byte multiples, so a row is a
// whole number of units when cols is a multiple of 2048 (the K-quants) or 1024
// (Q8_0, Q4_0); a slot is a whole number of units and may span rows. Each lane
// accumulates its item of every unit of a row; a row ends with one warp sum.
// Activation blocks are read from global memory (L1 hits).
//
// A row's sum is always formed the same way (per lane in unit order, then the
// warp's butterfly), whichever warp owns it and however rows are grouped into
// parts or slots, so every ring setting, group launches, the RoPE + KV store
// epilogue and single launches give bit-identical rows. Results differ from
// the portable kernels' (kernels/matmul_small_batch_impl.h) in summation order.
//
// Measured (H100 80GB HBM3, 2026-11-27 00:07 UTC, `bench_gpu_kernels
// matvec_stream`, us, kernel alone PDL off / on, against the portable kernels'
// automatic shapes): faster only on the long K-quant matrices with PDL on
// (Q4_K gate + up 28672 x 4096: 30.1 / 25.7 vs 29.3 / 27.7; the Q6_K output
// head 170.0 / 164.9 vs 174.4 / 172.7), slower or equal elsewhere (Q4_K down
// 4096 x 14336 18.5 / 15.7 vs 16.2 / 14.8; O 4096 x 4096 9.0 / 5.6 vs 7.1 /
// 5.6; Q6_K down 27.1 / 24.8 vs 25.4 / 23.7; Q8_0 10-15% slower at every
// shape, its head 2.74 vs 3.11 TB/s). tg128 Q4_K_M (bench_gpu_decode, same
// call, alternating): off 353.7 / 346.0, on everywhere 344.1 / 349.5 (the
// first version, 4 slots a warp and uneven rows a warp: 355 -> 305); only on
// gate + up and the head: within noise. So neither the portable kernels' many
// short blocks nor their ramp is what holds a decode step back.
//
// It is kept for what its one-wave grid of resident blocks allows: a matvec
// that computes its own input. LaunchMatVecGroupNormIn (NormIn) has every
// block normalize x and quantize it into its shared memory (bit for bit what
// the norm + quantize kernels compute), replacing those kernels in front of
// the Q/K/V and gate/up launches; block 0 also stores both, so the launch
// leaves what they would. Measured in a PDL chain (bench_gpu_kernels
// matvec_stream, 2026-11-27 00:39 UTC, us, the first version): RmsNorm +
// quantize + portable gate + up 31.9 -> 29.6 in one launch (8 warps a block,
// 2 blocks an SM), Q + K 11.2 -> 10.0, Q8_0 Q+K+V 14.4 -> 13.2, Q8_0 gate + up
// 45.5 -> 48.5 (slower). The engine can use it at batch 1
// (GpuBackend::kFuseNormMatVec, off), with the residual add moved into the O
// / down matvec's epilogue (RopeKvEpi::add_to), since no block may write an
// AddRmsNorm's sum while other blocks read it. In a decode step it loses
// (tg128 Q4_K_M 343 -> 305-310 tok/s, 2026-11-27 02:40 UTC) although the
// launches are faster one by one (the serialized step 0.28 ms shorter): the
// step loses the overlap between neighbours that programmatic dependent
// launch gives it. Its rings take a 196 KB shared-memory split while the
// portable kernels around it run under 16 KB (they slow down by up to 76%
// with less L1); a split change costs ~0.8 us a boundary (sync_probe's
// MeasureSplitChain), part of that loss, not all of it.
#include "kernels/matvec_stream.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/act_quant_device.h"
#include "kernels/launch_util.h"
#include "kernels/mbarrier_device.h"
#include "kernels/quant_device.h"
#include "kernels/rmsnorm_device.h"

namespace rocmforge::gpu {

#if defined(RF_GPU_CUDA)
namespace {

constexpr int kMaxSlots = 8;
constexpr int kMaxWarps = 8;
// The barriers (kMaxSlots per warp) come first, then the warps' rings.
constexpr int kBarBytes = 8 * kMaxSlots * kMaxWarps;

// Weights of a unit: 32 lane items of 64 (K-quants) or 32 (Q8_0, Q4_0) weights.
template <GgmlType T>
constexpr int UnitWeights() {
  return T == GgmlType::Q8_0 || T == GgmlType::Q4_0 ? 1024 : 2048;
}
template <GgmlType T>
constexpr int UnitBytes() {
  return UnitWeights<T>() / BlockElems(T) * BlockBytes(T);
}
static_assert(UnitBytes<GgmlType::Q4_K>() == 1152 && UnitBytes<GgmlType::Q6_K>() == 1680 &&
              UnitBytes<GgmlType::Q8_0>() == 1088 && UnitBytes<GgmlType::Q4_0>() == 576 &&
              UnitBytes<GgmlType::Q5_K>() == 1408);

// Parts as warp ranges: warps [warp_end[p - 1], warp_end[p]) stream part p.
struct StreamParts {
  const uint8_t* w[kMaxMatVecParts];
  float* y[kMaxMatVecParts];
  int64_t rows[kMaxMatVecParts];
  unsigned warp_end[kMaxMatVecParts];
};
struct StreamShape {
  int64_t row_bytes;
  int units_per_row;
  int units_per_slot;
  int slots;
  int early;  // slots requested before the dependency wait (<= slots)
  uint32_t slot_bytes;
  uint32_t act_bytes;  // the block's own quantized input (NormIn) before the rings; 0 without
};
// The input's RMSNorm done by every block (x, w: [cols]; x null: none, the
// activations come quantized in xq); block 0 also stores the normalized row
// to out and its quantized form to xq_out where those are not null.
struct NormIn {
  const float* x = nullptr;
  const float* w = nullptr;
  float eps = 0.0f;
  float* out = nullptr;
  ActQ8* xq_out = nullptr;
};
// The block size of a launch with NormIn: RowInvRms plays the norm kernel's
// 512 threads with 256 (two virtual threads each).
constexpr int kNormInWarps = 8;

#if defined(RF_MBARRIER_AVAILABLE)
// This lane's item of one unit; `a` = the unit's activation blocks.
template <GgmlType T>
__device__ __forceinline__ float UnitDot(const uint8_t* unit, const ActQ8* a, int lane) {
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    return DotPairK<T>(unit, lane, a + 2 * lane);
  } else if constexpr (T == GgmlType::Q6_K) {
    return DotSlice<T>(unit, lane, a[lane]) + DotSlice<T>(unit, lane + 32, a[lane + 32]);
  } else {
    return DotSlice<T>(unit, lane, a[lane]);
  }
}
#endif

// The block's input: RMSNorm of norm.x quantized by the type's activation
// rule into `act` (shared), as RmsNormQuantKernel / RmsNormRegKernel
// (kernels/rmsnorm.hip) compute it: the sum of squares of RowInvRms (the same
// order, so the same float), x * inv * w, QuantizeEightPerLane's integers (a
// warp a 256-value run, eight values a lane). Block 0 also stores the row and
// its quantized form (norm.out, norm.xq_out). Call from every thread of a
// block of kNormInWarps warps (block barriers). Returns act.
template <GgmlType T>
__device__ __forceinline__ const ActQ8* NormalizeQuantizeIntoShared(const NormIn& norm, int cols, ActQ8* act) {
  constexpr int kBlock = kNormInWarps * 32;
  __shared__ float scratch[kMaxWaves];
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  float v[kRegThreads / kBlock][kRegPer];
  LoadRowVirtual<kBlock>(norm.x, cols, v);
  const float inv = RowInvRms<kBlock>(v, cols, norm.eps, scratch);
  constexpr int kRule = T == GgmlType::Q8_0 || T == GgmlType::Q4_0 ? 1 : 2;
  const bool store = blockIdx.x == 0;
  for (int run = warp; run < cols / 256; run += kNormInWarps) {
    const int i0 = run * 256 + 8 * lane;
    const float4 a = *reinterpret_cast<const float4*>(norm.x + i0);
    const float4 b = *reinterpret_cast<const float4*>(norm.x + i0 + 4);
    const float4 wa = *reinterpret_cast<const float4*>(norm.w + i0);
    const float4 wb = *reinterpret_cast<const float4*>(norm.w + i0 + 4);
    const float o[8] = {a.x * inv * wa.x, a.y * inv * wa.y, a.z * inv * wa.z, a.w * inv * wa.w,
                        b.x * inv * wb.x, b.y * inv * wb.y, b.z * inv * wb.z, b.w * inv * wb.w};
    QuantizeEightPerLane<kRule>(o, run * 256, true, act);
    if (store && norm.xq_out != nullptr) QuantizeEightPerLane<kRule>(o, run * 256, true, norm.xq_out);
    if (store && norm.out != nullptr) {
      *reinterpret_cast<float4*>(norm.out + i0) = make_float4(o[0], o[1], o[2], o[3]);
      *reinterpret_cast<float4*>(norm.out + i0 + 4) = make_float4(o[4], o[5], o[6], o[7]);
    }
  }
  __syncthreads();
  return act;
}

template <GgmlType T>
__global__ void __launch_bounds__(kMaxWarps * 32) MatVecStreamKernel(const StreamParts parts,
                                                                   const StreamShape sh,
                                                                   const ActQ8* __restrict__ xq,
                                                                   const RopeKvEpi epi, const NormIn norm) {
#if defined(RF_MBARRIER_AVAILABLE)
  extern __shared__ __align__(128) uint8_t smem[];
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const unsigned gw = blockIdx.x * (blockDim.x / 32) + warp;
  // This warp's part and rows [r0, r1) of it (even bounds with the epilogue,
  // so a rotated pair stays in one warp).
  int p = -1;
  unsigned first = 0;
  if (gw < parts.warp_end[0]) {
    p = 0;
  } else if (gw < parts.warp_end[1]) {
    p = 1;
    first = parts.warp_end[0];
  } else if (gw < parts.warp_end[2]) {
    p = 2;
    first = parts.warp_end[1];
  }
  const uint8_t* w = p == 0 ? parts.w[0] : p == 1 ? parts.w[1] : parts.w[2];
  float* y = p == 0 ? parts.y[0] : p == 1 ? parts.y[1] : parts.y[2];
  const int64_t part_rows = p == 0 ? parts.rows[0] : p == 1 ? parts.rows[1] : parts.rows[2];
  int64_t r0 = 0, r1 = 0;
  if (p >= 0) {
    const unsigned nw = (p == 0 ? parts.warp_end[0] : p == 1 ? parts.warp_end[1] : parts.warp_end[2]) - first;
    const unsigned k = gw - first;
    r0 = part_rows * k / nw;
    r1 = part_rows * (k + 1) / nw;
    if (epi.on) {
      r0 &= ~int64_t{1};
      r1 = k + 1 == nw ? part_rows : (r1 & ~int64_t{1});
    }
  }
  const int64_t units = (r1 - r0) * sh.units_per_row;
  const int64_t bytes = units * UnitBytes<T>();
  const int64_t n_slots = (units + sh.units_per_slot - 1) / sh.units_per_slot;
  const uint8_t* src = w + r0 * sh.row_bytes;
  uint8_t* ring = smem + kBarBytes + sh.act_bytes + static_cast<size_t>(warp) * sh.slots * sh.slot_bytes;
  const uint32_t bar0 = static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + 8u * kMaxSlots * warp;
  const uint32_t ring0 = static_cast<uint32_t>(__cvta_generic_to_shared(ring));
  auto issue = [&](int64_t j, int s) {  // slot j of the run into ring slot s
    const int64_t off = j * sh.slot_bytes;
    const uint32_t n = static_cast<uint32_t>(min(static_cast<int64_t>(sh.slot_bytes), bytes - off));
    MbarExpectTx(bar0 + 8u * s, n);
    BulkCopyToShared(ring0 + static_cast<uint32_t>(s) * sh.slot_bytes, src + off, n, bar0 + 8u * s);
  };
  if (lane == 0) {
    for (int s = 0; s < sh.slots; ++s) MbarInit(bar0 + 8u * s, 1);
    MbarInitFence();
    for (int j = 0; j < n_slots && j < sh.early; ++j) issue(j, j);  // weights only: before the wait
  }
  if (norm.x != nullptr) {  // the norm weights are constant too: into L2 before the wait
    const int cols = sh.units_per_row * UnitWeights<T>();
    for (int i = 32 * static_cast<int>(threadIdx.x); i < cols; i += 32 * static_cast<int>(blockDim.x)) {
      PrefetchL2(norm.w + i);
    }
  }
  __syncwarp();
  GridDependencyBegin();
  if (lane == 0) {
    for (int j = sh.early; j < n_slots && j < sh.slots; ++j) issue(j, j);
  }
  if (norm.x != nullptr) {  // this block's own copy of the normalized, quantized input
    xq = NormalizeQuantizeIntoShared<T>(norm, sh.units_per_row * UnitWeights<T>(),
                                        reinterpret_cast<ActQ8*>(smem + kBarBytes));
  }

  const int role = EpiRoleOf(epi, p < 0 ? 0 : p);
  constexpr int kSlicesPerUnit = UnitWeights<T>() / 32;
  float acc = 0.0f, held = 0.0f;
  int unit_in_row = 0;
  int64_t row = r0;
  int s = 0;           // ring slot of run slot j
  uint32_t parity = 0;  // its fill count so far, mod 2
  for (int64_t j = 0; j < n_slots; ++j) {
    MbarWait(bar0 + 8u * s, parity);
    const uint8_t* slot = ring + static_cast<size_t>(s) * sh.slot_bytes;
    const int n_units = static_cast<int>(min(static_cast<int64_t>(sh.units_per_slot), units - j * sh.units_per_slot));
    for (int t = 0; t < n_units; ++t) {
      acc += UnitDot<T>(slot + t * UnitBytes<T>(), xq + static_cast<int64_t>(unit_in_row) * kSlicesPerUnit, lane);
      if (++unit_in_row == sh.units_per_row) {  // the row is complete (uniform over the warp)
        const float v = WaveSum(acc);
        acc = 0.0f;
        unit_in_row = 0;
        if (role == kPlain) {
          if (lane == 0) StorePlainRow(epi, row, v, y);
        } else if ((row & 1) == 0) {
          held = v;
        } else if (lane == 0) {
          EpiPair(epi, role, row - 1, held, v, y);
        }
        ++row;
      }
    }
    __syncwarp();  // every lane is done with slot s
    if (lane == 0 && j + sh.slots < n_slots) {
      FenceProxyAsyncShared();
      issue(j + sh.slots, s);
    }
    if (++s == sh.slots) {
      s = 0;
      parity ^= 1u;
    }
  }
#else
  (void)parts;
  (void)sh;
  (void)xq;
  (void)epi;
  (void)norm;
#endif
}

int Slots(const MatVecConfig& c) { return c.stream_slots >= 2 && c.stream_slots <= kMaxSlots ? c.stream_slots : 2; }
int Warps(const MatVecConfig& c) { return c.stream_warps >= 1 && c.stream_warps <= kMaxWarps ? c.stream_warps : 4; }

template <GgmlType T>
int UnitsPerSlot(const MatVecConfig& c) {
  const int target = c.stream_slot_bytes > 0 ? std::min(c.stream_slot_bytes, 16384) : 3072;
  return std::max(1, target / UnitBytes<T>());
}

// act_bytes: the block's own quantized input (NormIn), 0 without.
template <GgmlType T>
size_t SmemBytes(const MatVecConfig& c, int warps, size_t act_bytes) {
  return kBarBytes + act_bytes + static_cast<size_t>(warps) * Slots(c) * UnitsPerSlot<T>(c) * UnitBytes<T>();
}

// Blocks of this kernel shape that fit on one SM (cached per shape).
// The kernel's shared-memory limit is raised to the largest size asked for so
// far (never lowered: a cached shape launches again with its own size).
int BlocksPerSm(const void* kernel, int threads, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<const void*, int, size_t>, int> cache;
  static std::map<const void*, size_t> smem_limit;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(kernel, threads, smem);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  int n = 0;
  size_t& limit = smem_limit[kernel];
  if (smem > limit) {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) !=
        cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    limit = smem;
  }
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem) != cudaSuccess) {
    (void)cudaGetLastError();
    n = 0;
  }
  cache[key] = n;
  return n;
}

struct Plan {
  StreamParts parts;
  StreamShape shape;
  unsigned grid = 0;
  int warps = 0;
  size_t smem = 0;
};

template <GgmlType T>
bool MakePlan(const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue, bool norm, const MatVecConfig& c,
              Plan* plan) {
  if (c.stream <= 0) return false;
  if (n_parts < 1 || n_parts > kMaxMatVecParts || cols <= 0 || cols % UnitWeights<T>() != 0) return false;
  if (cols / UnitWeights<T>() > (1 << 20)) return false;
  int64_t total_rows = 0;
  for (int i = 0; i < n_parts; ++i) {
    if (parts[i].rows < 0 || reinterpret_cast<uintptr_t>(parts[i].w) % 16 != 0) return false;
    if (epilogue && parts[i].rows % 2 != 0) return false;
    total_rows += parts[i].rows;
  }
  if (norm && cols > kRegThreads * kRegPer) return false;  // RowInvRms' registers
  const int warps = norm ? kNormInWarps : Warps(c);
  // The block's own input: cols / 32 activation blocks (cols is a multiple of 1024).
  const size_t act_bytes = norm ? static_cast<size_t>(cols / 32) * sizeof(ActQ8) : 0;
  const size_t smem = SmemBytes<T>(c, warps, act_bytes);
  if (smem > 227 * 1024 || !DeviceRunsSm90Code()) return false;
  int per_sm = BlocksPerSm(reinterpret_cast<const void*>(MatVecStreamKernel<T>), warps * 32, smem);
  if (per_sm <= 0) return false;
  if (c.stream_blocks_per_sm > 0) per_sm = std::min(per_sm, c.stream_blocks_per_sm);
  // At most one wave of warps, each with the same whole number q of rows (row
  // pairs with the epilogue) where the rows allow: a warp with one row more
  // than the others is the kernel's tail (its refills come last).
  const int64_t splittable = epilogue ? total_rows / 2 : total_rows;
  const int64_t wave = static_cast<int64_t>(MultiprocessorCount()) * per_sm * warps;
  const int64_t q = std::max<int64_t>(1, (splittable + wave - 1) / wave);
  StreamParts& sp = plan->parts;
  sp = StreamParts{};
  unsigned end = 0;
  for (int i = 0; i < kMaxMatVecParts; ++i) {
    const int k = i < n_parts ? i : n_parts - 1;  // unused slots repeat the last part, with no warps
    sp.w[i] = static_cast<const uint8_t*>(parts[k].w);
    sp.y[i] = parts[k].y;
    sp.rows[i] = parts[k].rows;
    if (i < n_parts && parts[k].rows > 0) {
      const int64_t unit_rows = epilogue ? parts[k].rows / 2 : parts[k].rows;
      end += static_cast<unsigned>((unit_rows + q - 1) / q);
    }
    sp.warp_end[i] = end;
  }
  StreamShape& sh = plan->shape;
  sh.row_bytes = cols / BlockElems(T) * BlockBytes(T);
  sh.units_per_row = static_cast<int>(cols / UnitWeights<T>());
  sh.units_per_slot = UnitsPerSlot<T>(c);
  sh.slots = Slots(c);
  sh.early = c.stream_early < 0 ? sh.slots : std::min(c.stream_early, sh.slots);
  sh.slot_bytes = static_cast<uint32_t>(sh.units_per_slot * UnitBytes<T>());
  sh.act_bytes = static_cast<uint32_t>(act_bytes);
  plan->warps = warps;
  plan->smem = smem;
  plan->grid = Blocks(end, warps);
  return true;
}

template <GgmlType T>
bool Takes(const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue, bool norm, const MatVecConfig& c) {
  Plan plan;
  return MakePlan<T>(parts, n_parts, cols, epilogue, norm, c, &plan);
}

bool TakesAny(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue, bool norm,
              const MatVecConfig& c) {
  switch (type) {
    case GgmlType::Q8_0: return Takes<GgmlType::Q8_0>(parts, n_parts, cols, epilogue, norm, c);
    case GgmlType::Q4_0: return Takes<GgmlType::Q4_0>(parts, n_parts, cols, epilogue, norm, c);
    case GgmlType::Q4_K: return Takes<GgmlType::Q4_K>(parts, n_parts, cols, epilogue, norm, c);
    case GgmlType::Q5_K: return Takes<GgmlType::Q5_K>(parts, n_parts, cols, epilogue, norm, c);
    case GgmlType::Q6_K: return Takes<GgmlType::Q6_K>(parts, n_parts, cols, epilogue, norm, c);
    default: return false;
  }
}

// The settings of a launch with NormIn: the current ones on the bulk-copy
// kernel, at most 2 blocks an SM unless set (fewer copies of the norm's
// loads: gate + up 31.5 us with as many as fit, 29.6-29.8 with 2; H100,
// 2026-11-27 00:39 UTC).
MatVecConfig NormInConfig() {
  MatVecConfig c = GetMatVecConfig();
  c.stream = 1;
  if (c.stream_blocks_per_sm <= 0) c.stream_blocks_per_sm = 2;
  return c;
}

template <GgmlType T>
bool LaunchT(const MatVecPart* parts, int n_parts, int64_t cols, const void* xq, const RopeKvEpi& epi,
             const NormIn& norm, const MatVecConfig& c, Stream s) {
  Plan plan;
  if (!MakePlan<T>(parts, n_parts, cols, epi.on, norm.x != nullptr, c, &plan)) return false;
  if (plan.grid == 0) return true;  // no rows
  LaunchKernel(MatVecStreamKernel<T>, plan.grid, plan.warps * 32, plan.smem, s, plan.parts, plan.shape,
               static_cast<const ActQ8*>(xq), epi, norm);
  return true;
}

bool LaunchAny(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, const void* xq,
               const RopeKvEpi& epi, const NormIn& norm, const MatVecConfig& c, Stream s) {
  switch (type) {
    case GgmlType::Q8_0: return LaunchT<GgmlType::Q8_0>(parts, n_parts, cols, xq, epi, norm, c, s);
    case GgmlType::Q4_0: return LaunchT<GgmlType::Q4_0>(parts, n_parts, cols, xq, epi, norm, c, s);
    case GgmlType::Q4_K: return LaunchT<GgmlType::Q4_K>(parts, n_parts, cols, xq, epi, norm, c, s);
    case GgmlType::Q5_K: return LaunchT<GgmlType::Q5_K>(parts, n_parts, cols, xq, epi, norm, c, s);
    case GgmlType::Q6_K: return LaunchT<GgmlType::Q6_K>(parts, n_parts, cols, xq, epi, norm, c, s);
    default: return false;
  }
}

}  // namespace
#endif  // RF_GPU_CUDA

bool StreamKernelTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue,
                       const MatVecConfig& c) {
#if defined(RF_GPU_CUDA)
  return TakesAny(type, parts, n_parts, cols, epilogue, false, c);
#else
  (void)type;
  (void)parts;
  (void)n_parts;
  (void)cols;
  (void)epilogue;
  (void)c;
  return false;
#endif
}

bool LaunchMatVecStream(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, const void* xq,
                        const RopeKvEpi& epi, const MatVecConfig& c, Stream s) {
#if defined(RF_GPU_CUDA)
  return LaunchAny(type, parts, n_parts, cols, xq, epi, NormIn{}, c, s);
#else
  (void)type;
  (void)parts;
  (void)n_parts;
  (void)cols;
  (void)xq;
  (void)epi;
  (void)c;
  (void)s;
  return false;
#endif
}

bool MatVecNormInTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue) {
#if defined(RF_GPU_CUDA)
  return TakesAny(type, parts, n_parts, cols, epilogue, true, NormInConfig());
#else
  (void)type;
  (void)parts;
  (void)n_parts;
  (void)cols;
  (void)epilogue;
  return false;
#endif
}

bool LaunchMatVecGroupNormIn(GgmlType type, int64_t cols, const MatVecNormIn& norm, const MatVecPart* parts,
                             int n_parts, const MatVecRopeKv* rope, Stream s) {
#if defined(RF_GPU_CUDA)
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (norm.x == nullptr || norm.w == nullptr || !aligned(norm.x) || !aligned(norm.w) || !aligned(norm.out)) {
    return false;
  }
  if (rope != nullptr && (n_parts != 3 || !MatVecGroupRopeKvSupported(type, cols, parts, n_parts, rope->head_dim,
                                                                      rope->rot_dim))) {
    return false;
  }
  NormIn n;
  n.x = norm.x;
  n.w = norm.w;
  n.eps = norm.eps;
  n.out = norm.out;
  n.xq_out = static_cast<ActQ8*>(norm.xq);
  const RopeKvEpi epi = rope != nullptr ? MakeRopeKvEpi(*rope, parts[1].rows) : RopeKvEpi{};
  return LaunchAny(type, parts, n_parts, cols, nullptr, epi, n, NormInConfig(), s);
#else
  (void)type;
  (void)cols;
  (void)norm;
  (void)parts;
  (void)n_parts;
  (void)rope;
  (void)s;
  return false;
#endif
}

}  // namespace rocmforge::gpu
