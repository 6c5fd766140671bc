// Probe (bench only, NVIDIA only, never built by CI): what a dataflow boundary
// would save in a batch-1 decode step. Nothing in kernels/ or engine/ uses it.
//
// The FFN of a Llama-3-8B layer in Q4_K (gate / up 14336 x 4096, down 4096 x
// 14336; 99 MB a layer), run as a chain of L layers (each on its own copy of
// the weights, so no layer finds the last one's lines in L2) with programmatic
// dependent launch, captured in a graph and replayed:
//  * chain: the engine's way. gate / up as one two-part launch (gate rows, then
//    up rows), a SwiGLU + Q8_K quantization kernel, the down matvec; every
//    kernel waits for the whole previous grid (griddepcontrol.wait).
//  * chain + prefetch: the same, with the first 8 MB of down asked into L2 on a
//    side stream while SwiGLU runs (as GpuBackend's weight prefetch does).
//  * dataflow: gate / up with interleaved rows (a block's warps 0-3 take gate
//    rows r..r+15, warps 4-7 the same up rows) finishing SwiGLU in its epilogue;
//    the last block by index of the 16 of a 256-value group waits for the
//    other 15, quantizes the group and raises its ready flag (release). The down matvec is launched early (PDL)
//    and never waits for the whole grid: at each step of its loop 16 threads
//    of a block wait for the step's 16 group flags (acquire), a block barrier
//    passes that on, and the groups (padded so no L1 line holds two) are read
//    through L1. So down can start while gate / up's last blocks finish, and
//    there is no SwiGLU launch and no grid-wide wait.
//  * SwiGLU + quantize in gate / up's epilogue alone, down waiting for the
//    whole grid (no flags).
// The matvec bodies are the production ones (DotUnit<Q4_K> pairs, gate / up at
// 32 threads a row and 4 rows a warp, down at 64 threads a row and 2 rows a
// group), so dataflow and chain give the same integers and, for down, the same
// sums: y is compared bit for bit.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bench/gpu/probe_common.h"
#include "bench/gpu/probe_cuda_check.h"
#include "kernels/act_quant_device.h"
#include "kernels/quant_device.h"
#include "kernels/swiglu_device.h"

namespace rocmforge::probe {
namespace {

using gpu::ActQ8;

constexpr int kThreads = 256;
constexpr int64_t kDim = 4096, kFfn = 14336;
constexpr int64_t kUpRowBytes = kDim / 256 * 144;    // gate / up rows
constexpr int64_t kDownRowBytes = kFfn / 256 * 144;  // down rows
constexpr int kGroups = static_cast<int>(kFfn / 256);
// gate / up: 32 threads a row, 4 rows a warp; down: 64 threads a row, 2 rows a group.
constexpr int kUpTpr = 32, kUpRpt = 4, kDownTpr = 64, kDownRpt = 2;
constexpr int kDownBlockRows = kThreads / kDownTpr * kDownRpt;  // 8

// The sums of `acc` over kTpr threads of each row group, row i of group rr at
// part[rr][i] (kTpr = 32 or 64: one or two warps a group).
template <int kTpr, int kRpt>
__device__ __forceinline__ void GroupSums(const float (&acc)[kRpt], float (*part)[kRpt]) {
  __shared__ float wsum[kThreads / 32][kRpt];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    const float s = WarpSum(acc[i]);
    if (lane == 0) wsum[warp][i] = s;
  }
  __syncthreads();
  if (threadIdx.x < kThreads / kTpr * kRpt) {
    const int rr = threadIdx.x / kRpt, i = threadIdx.x % kRpt;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kTpr / 32; ++w) s += wsum[rr * (kTpr / 32) + w][i];
    part[rr][i] = s;
  }
  __syncthreads();
}

// Rows r0 .. r0 + kRpt of w (pairs p = tr, tr + kTpr, ...) against x.
template <int kTpr, int kRpt>
__device__ __forceinline__ void RowsDot(const uint8_t* w, int64_t r0, int64_t row_bytes, int64_t cols,
                                        const ActQ8* x, float (&acc)[kRpt]) {
  const int tr = threadIdx.x % kTpr;
  for (int64_t p = tr; p < cols / 64; p += kTpr) {
#pragma unroll
    for (int i = 0; i < kRpt; ++i) acc[i] += gpu::DotUnit<GgmlType::Q4_K>(w + (r0 + i) * row_bytes, p, x);
  }
}

// ---- the chain ------------------------------------------------------------
__global__ void __launch_bounds__(kThreads) GateUpKernel(const uint8_t* __restrict__ gate,
                                                         const uint8_t* __restrict__ up,
                                                         const ActQ8* __restrict__ xq, float* g, float* u) {
  gpu::GridDependencyBegin();
  constexpr int kBlockRows = kThreads / kUpTpr * kUpRpt;  // 32
  const int64_t blocks_a = kFfn / kBlockRows;
  const bool is_up = blockIdx.x >= blocks_a;
  const int64_t block_r0 = (is_up ? blockIdx.x - blocks_a : blockIdx.x) * kBlockRows;
  const int64_t r0 = block_r0 + threadIdx.x / kUpTpr * kUpRpt;
  float acc[kUpRpt] = {};
  RowsDot<kUpTpr, kUpRpt>(is_up ? up : gate, r0, kUpRowBytes, kDim, xq, acc);
  __shared__ float part[kThreads / kUpTpr][kUpRpt];
  GroupSums<kUpTpr, kUpRpt>(acc, part);
  if (threadIdx.x < kBlockRows) (is_up ? u : g)[block_r0 + threadIdx.x] = part[threadIdx.x / kUpRpt][threadIdx.x % kUpRpt];
}

__global__ void __launch_bounds__(kThreads) SwiGLUQuantizeKernel(const float* g, const float* u, float* h,
                                                                 ActQ8* hq) {
  gpu::GridDependencyBegin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * 256 + threadIdx.x;
  const float o[1] = {gpu::SiluMul(g[i], u[i])};
  h[i] = o[0];
  gpu::BlockQuantizeRow<256, 1, 2>(o, static_cast<int64_t>(blockIdx.x) * 256, 256, hq);
}

__global__ void __launch_bounds__(kThreads) DownKernel(const uint8_t* __restrict__ down, const ActQ8* hq, float* y) {
  gpu::GridDependencyBegin();
  const int64_t block_r0 = static_cast<int64_t>(blockIdx.x) * kDownBlockRows;
  const int64_t r0 = block_r0 + threadIdx.x / kDownTpr * kDownRpt;
  float acc[kDownRpt] = {};
  RowsDot<kDownTpr, kDownRpt>(down, r0, kDownRowBytes, kFfn, hq, acc);
  __shared__ float part[kThreads / kDownTpr][kDownRpt];
  GroupSums<kDownTpr, kDownRpt>(acc, part);
  if (threadIdx.x < kDownBlockRows) y[block_r0 + threadIdx.x] = part[threadIdx.x / kDownRpt][threadIdx.x % kDownRpt];
}

__global__ void __launch_bounds__(128) PrefetchKernel(const uint8_t* w, int64_t bytes) {
  const int64_t per = 4096;  // bytes a thread
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t off = t * per; off < (t + 1) * per && off < bytes; off += 128) gpu::PrefetchL2(w + off);
}

// ---- dataflow --------------------------------------------------------------
// The dataflow's quantized h: group g's 8 activation blocks (320 bytes) at
// g * kGroupStride, so no 128-byte line holds two groups: a consumer may read a
// group through L1 once its flag is up (a line shared with a group not yet
// written could sit in L1 stale). Read past L1 instead (ld.cg), every thread's
// loads went to the same 18 KB of L2 and the down matvec ran 9x slower.
constexpr int64_t kGroupStride = 384;
struct Flow {
  float* h;
  ActQ8* hq;  // kGroups * kGroupStride bytes
  unsigned* counters;  // [kGroups]: blocks of a group done
  unsigned* ready;     // [kGroups]: group quantized (1)
  unsigned* done;      // [1]: down blocks done
};

__device__ __forceinline__ void RedRelease(unsigned* p, unsigned v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void StoreRelease(unsigned* p, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// kStride: bytes between groups of hq (kGroupStride for the flag consumer;
// 320, the plain layout, for a consumer that waits for the whole grid).
template <int64_t kStride>
__global__ void __launch_bounds__(kThreads) GateUpFlowKernel(const uint8_t* __restrict__ gate,
                                                             const uint8_t* __restrict__ up,
                                                             const ActQ8* __restrict__ xq, Flow f) {
  gpu::GridDependencyBegin();
  constexpr int kRows = 16;  // h values a block
  const int warp = threadIdx.x / 32;
  const bool is_up = warp >= 4;
  const int64_t block_r0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t r0 = block_r0 + (warp % 4) * kUpRpt;
  float acc[kUpRpt] = {};
  RowsDot<kUpTpr, kUpRpt>(is_up ? up : gate, r0, kUpRowBytes, kDim, xq, acc);
  __shared__ float part[kThreads / kUpTpr][kUpRpt];
  GroupSums<kUpTpr, kUpRpt>(acc, part);
  if (threadIdx.x < kRows) {
    const float gv = part[threadIdx.x / kUpRpt][threadIdx.x % kUpRpt];
    const float uv = part[4 + threadIdx.x / kUpRpt][threadIdx.x % kUpRpt];
    f.h[block_r0 + threadIdx.x] = gpu::SiluMul(gv, uv);
  }
  __syncthreads();
  // Arrival: the group's other blocks add to its count and leave (a release
  // reduction, no round trip); its last block by index (dispatched after the
  // others, so they are resident or done) waits for them and quantizes.
  // (An atomicAdd whose result picks the last arriver kept every block ~1 us
  // longer: gate / up 4.4 us slower.)
  const int grp = static_cast<int>(block_r0 / 256);
  constexpr unsigned kPeers = 256 / kRows - 1;
  const bool finisher = (blockIdx.x + 1) % (256 / kRows) == 0;
  if (!finisher) {
    if (threadIdx.x == 0) RedRelease(&f.counters[grp], 1u);
    return;
  }
  if (threadIdx.x == 0) {
    while (LoadAcquire(&f.counters[grp]) != kPeers) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
  const int64_t i = static_cast<int64_t>(grp) * 256 + threadIdx.x;
  const float o[1] = {__ldcg(f.h + i)};
  ActQ8* gq = reinterpret_cast<ActQ8*>(reinterpret_cast<char*>(f.hq) + grp * kStride);
  gpu::BlockQuantizeRow<256, 1, 2>(o, 0, 256, gq);
  __syncthreads();
  if (threadIdx.x == 0) {
    f.counters[grp] = 0;
    // (No flag for a consumer that waits for the whole grid.)
    if (kStride == kGroupStride) StoreRelease(&f.ready[grp], 1u);  // cumulative: the block's stores come first
  }
}

// Activation block j of the padded layout.
__device__ __forceinline__ const ActQ8* FlowAct(const ActQ8* hq, int64_t j) {
  return reinterpret_cast<const ActQ8*>(reinterpret_cast<const char*>(hq) + (j / 8) * kGroupStride +
                                        (j % 8) * static_cast<int64_t>(sizeof(ActQ8)));
}

template <unsigned kPollNs>
__global__ void __launch_bounds__(kThreads) DownFlowKernel(const uint8_t* __restrict__ down, Flow f, float* y) {
  // No grid-wide wait before the loop: every activation group is read after
  // its flag. (y is read by no kernel before this one in the chain.)
  gpu::GridDependencyLaunchDependents();
  const int64_t block_r0 = static_cast<int64_t>(blockIdx.x) * kDownBlockRows;
  const int64_t r0 = block_r0 + threadIdx.x / kDownTpr * kDownRpt;
  const int tr = threadIdx.x % kDownTpr;
  float acc[kDownRpt] = {};
  // Every thread runs every step (block barriers inside); step k covers
  // pairs 64k .. 64k + 63 of each row.
  for (int k = 0; k < (kFfn / 64 + kDownTpr - 1) / kDownTpr; ++k) {
    const int64_t p = tr + static_cast<int64_t>(kDownTpr) * k;
    ActQ8 a[2];
    // Step k reads groups 16k .. 16k + 15 (one pair a thread, 64 threads a
    // row): threads 0-15 poll one each by acquire loads with back-off, and the
    // block barrier hands the order on. Measured and dropped (H100, this
    // probe, us a layer against the chain's 41.2): every thread polling its
    // own flag by acquire loads 130-153; lanes 0-7 of each warp polling its 8
    // groups, then a warp barrier, 65-83 (acquire loads) or 55 (relaxed loads
    // and a __threadfence); this form 48-50 (relaxed loads and a fence: 49.5).
    static_assert(kDownTpr == 64);
    const int grp0 = 16 * k;
    if (threadIdx.x < 16 && grp0 + static_cast<int>(threadIdx.x) < kGroups) {
      while (LoadAcquire(&f.ready[grp0 + threadIdx.x]) == 0) __nanosleep(kPollNs);
    }
    __syncthreads();
    if (p >= kFfn / 64) continue;
    a[0] = *FlowAct(f.hq, 2 * p);  // through L1: see kGroupStride
    a[1] = *FlowAct(f.hq, 2 * p + 1);
#pragma unroll
    for (int i = 0; i < kDownRpt; ++i) {
      acc[i] += gpu::DotPairK<GgmlType::Q4_K>(down + (r0 + i) * kDownRowBytes, p, a);
    }
  }
  __shared__ float part[kThreads / kDownTpr][kDownRpt];
  GroupSums<kDownTpr, kDownRpt>(acc, part);
  gpu::GridDependencyWait();  // (a no-op by now: gate / up is done) before writing y
  if (threadIdx.x < kDownBlockRows) y[block_r0 + threadIdx.x] = part[threadIdx.x / kDownRpt][threadIdx.x % kDownRpt];
  // The last block clears the flags for the next layer's launch (which waits
  // for this grid).
  __shared__ unsigned last;
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(f.done, 1u) == gridDim.x - 1;
  __syncthreads();
  if (last) {
    for (int k = threadIdx.x; k < kGroups; k += kThreads) f.ready[k] = 0;
    if (threadIdx.x == 0) *f.done = 0;
  }
}

// ---- host ------------------------------------------------------------------
struct Layer {
  uint8_t *gate, *up, *down;
};

enum Mode {
  kChain = 0, kChainPrefetch = 1, kFlow = 2, kFlow20 = 3, kFlow1000 = 4, kUpAlone = 5, kUpFlowAlone = 6,
  kFlowDownPlain = 7, kFusedGridWait = 8
};

int Main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  constexpr int kLayers = 8;
  std::mt19937 rng(20261127);
  std::vector<uint8_t> hg, hu, hd;
  FillRandomQ4K(hg, kFfn, kUpRowBytes, rng);
  FillRandomQ4K(hu, kFfn, kUpRowBytes, rng);
  FillRandomQ4K(hd, kDim, kDownRowBytes, rng);
  const size_t up_bytes = hg.size(), down_bytes = hd.size();
  std::vector<Layer> layers(kLayers);
  for (auto& l : layers) {
    CHECK(cudaMalloc(&l.gate, up_bytes));
    CHECK(cudaMalloc(&l.up, up_bytes));
    CHECK(cudaMalloc(&l.down, down_bytes));
    CHECK(cudaMemcpy(l.gate, hg.data(), up_bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(l.up, hu.data(), up_bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(l.down, hd.data(), down_bytes, cudaMemcpyHostToDevice));
  }
  const std::vector<ActQ8> xs = RandomActQ8(kDim / 32, rng, [] { return 1e-3f; });
  ActQ8 *xq, *hq;
  float *g, *u, *h, *y;
  unsigned* flags;
  CHECK(cudaMalloc(&xq, xs.size() * sizeof(ActQ8)));
  CHECK(cudaMemcpy(xq, xs.data(), xs.size() * sizeof(ActQ8), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&hq, kFfn / 32 * sizeof(ActQ8)));
  CHECK(cudaMalloc(&g, kFfn * sizeof(float)));
  CHECK(cudaMalloc(&u, kFfn * sizeof(float)));
  CHECK(cudaMalloc(&h, kFfn * sizeof(float)));
  CHECK(cudaMalloc(&y, kDim * sizeof(float)));
  CHECK(cudaMalloc(&flags, (2 * kGroups + 1) * sizeof(unsigned)));
  CHECK(cudaMemset(flags, 0, (2 * kGroups + 1) * sizeof(unsigned)));
  ActQ8* hq_flow;
  CHECK(cudaMalloc(&hq_flow, kGroups * kGroupStride));
  const Flow flow{h, hq_flow, flags, flags + kGroups, flags + 2 * kGroups};
  const Flow plain_flow{h, hq, flags, flags + kGroups, flags + 2 * kGroups};  // the chain's hq layout

  cudaStream_t st, side;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  cudaEvent_t fork, join;
  CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
  const unsigned up_grid = static_cast<unsigned>(2 * kFfn / 32), flow_grid = static_cast<unsigned>(kFfn / 16);
  const unsigned down_grid = static_cast<unsigned>(kDim / kDownBlockRows);
  const int64_t prefetch_bytes = int64_t{8} << 20;

  unsigned poll_ns = 100;
  auto record = [&](Mode mode) {
    for (const Layer& l : layers) {
      if (mode == kUpAlone) {
        LaunchPdl(GateUpKernel, up_grid, kThreads, st, l.gate, l.up, xq, g, u);
        continue;
      }
      if (mode == kFusedGridWait) {
        LaunchPdl(GateUpFlowKernel<320>, flow_grid, kThreads, st, l.gate, l.up, xq, plain_flow);
        LaunchPdl(DownKernel, down_grid, kThreads, st, l.down, hq, y);
        continue;
      }
      if (mode == kFlowDownPlain) {
        LaunchPdl(GateUpFlowKernel<kGroupStride>, flow_grid, kThreads, st, l.gate, l.up, xq, flow);
        DownFlowKernel<100><<<down_grid, kThreads, 0, st>>>(l.down, flow, y);
        continue;
      }
      if (mode == kUpFlowAlone) {
        LaunchPdl(GateUpFlowKernel<kGroupStride>, flow_grid, kThreads, st, l.gate, l.up, xq, flow);
        continue;
      }
      if (mode >= kFlow) {
        poll_ns = mode == kFlow ? 100 : mode == kFlow20 ? 20 : 1000;
        LaunchPdl(GateUpFlowKernel<kGroupStride>, flow_grid, kThreads, st, l.gate, l.up, xq, flow);
        if (poll_ns == 100) {
          LaunchPdl(DownFlowKernel<100>, down_grid, kThreads, st, l.down, flow, y);
        } else if (poll_ns == 1000) {
          LaunchPdl(DownFlowKernel<1000>, down_grid, kThreads, st, l.down, flow, y);
        } else {
          LaunchPdl(DownFlowKernel<20>, down_grid, kThreads, st, l.down, flow, y);
        }
      } else {
        LaunchPdl(GateUpKernel, up_grid, kThreads, st, l.gate, l.up, xq, g, u);
        if (mode == kChainPrefetch) {
          CHECK(cudaEventRecord(fork, st));
          CHECK(cudaStreamWaitEvent(side, fork));
          PrefetchKernel<<<static_cast<unsigned>(prefetch_bytes / 4096 / 128), 128, 0, side>>>(l.down, prefetch_bytes);
          CHECK(cudaEventRecord(join, side));
        }
        LaunchPdl(SwiGLUQuantizeKernel, static_cast<unsigned>(kGroups), kThreads, st, g, u, h, hq);
        LaunchPdl(DownKernel, down_grid, kThreads, st, l.down, hq, y);
        if (mode == kChainPrefetch) CHECK(cudaStreamWaitEvent(st, join));
      }
    }
  };
  const char* names[] = {"chain (gate/up, SwiGLU + quantize, down)", "chain + 8 MB of down prefetched beside SwiGLU",
                         "dataflow (SwiGLU in gate/up, down on group flags)", "dataflow, polls 20 ns apart",
                         "dataflow, polls 1000 ns apart", "(gate/up alone, chain's)", "(gate/up alone, dataflow's)",
                         "(dataflow, down launched without PDL)",
                         "SwiGLU + quantize in gate/up, down waits for the grid"};
  std::vector<float> y_ref(kDim), y_got(kDim);
  const double bytes = static_cast<double>(2 * up_bytes + down_bytes);
  int failures = 0;
  for (int round = 0; round < 2; ++round) {
    for (int mode = 0; mode < 9; ++mode) {
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
      record(static_cast<Mode>(mode));
      CHECK(cudaStreamEndCapture(st, &graph));
      CHECK(cudaGraphInstantiate(&exec, graph, 0));
      for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, st));
      CHECK(cudaStreamSynchronize(st));
      CHECK(cudaMemcpy((mode == 0 ? y_ref : y_got).data(), y, kDim * sizeof(float), cudaMemcpyDeviceToHost));
      if (mode != 0 && (mode < kUpAlone || mode >= kFlowDownPlain) && std::memcmp(y_ref.data(), y_got.data(), kDim * sizeof(float)) != 0) {
        ++failures;
        std::printf("  %s: y differs from the chain's\n", names[mode]);
      }
      cudaEvent_t a, b;
      CHECK(cudaEventCreate(&a));
      CHECK(cudaEventCreate(&b));
      std::vector<float> us;
      for (int rep = 0; rep < 7; ++rep) {
        CHECK(cudaEventRecord(a, st));
        for (int i = 0; i < 10; ++i) CHECK(cudaGraphLaunch(exec, st));
        CHECK(cudaEventRecord(b, st));
        CHECK(cudaEventSynchronize(b));
        float ms = 0.0f;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        us.push_back(ms * 1e3f / (10 * kLayers));
      }
      std::sort(us.begin(), us.end());
      std::printf("%-50s %7.2f us a layer (median of 7; min %.2f) = %.2f TB/s of its 99 MB\n", names[mode], us[3],
                  us[0], bytes / (us[3] * 1e-6) / 1e12);
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      CHECK(cudaGraphExecDestroy(exec));
      CHECK(cudaGraphDestroy(graph));
    }
  }
  std::printf("%s: %d failures\n", failures == 0 ? "PASS" : "FAIL", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rocmforge::probe

int main() { return rocmforge::probe::Main(); }
