// Probe (bench only, NVIDIA only, never built by CI): would a persistent
// decode kernel stream a token's weights closer to the copy bandwidth than the
// engine's chain of launches? Nothing in kernels/ or engine/ uses it.
//
// The batch-1 matvecs of a Llama-3-8B token in Q4_K, nothing else: per layer
// Q/K/V (6144 x 4096), O (4096 x 4096), gate/up (28672 x 4096), down (4096 x
// 14336), 122.7 MB a layer, 32 layers each on its own copy of the weights (so
// no matrix finds an earlier one's lines in L2): 3.93 GB, 128 matrices. The
// activations are fixed (the probe times the weight stream, not the small
// kernels), but every form keeps the dependency a real step has: no block
// reads matrix m + 1's activations before every block has finished matrix m.
//  * chain: one launch a matrix with programmatic dependent launch, captured in
//    a graph (the engine's form without its small kernels; the engine's step
//    with its small kernels left out measured 1.80 ms for 4.63 GB on the H200,
//    2026-11-28, bench_gpu_decode RF_SKIP_SETS='16,17,20,18').
//  * persistent: one launch of as many blocks as the SMs hold at once (the
//    occupancy calculator's count, so all are resident and a spin barrier is
//    safe on an otherwise idle device) walking the 128 matrices, a grid barrier
//    (arrival counters, release / acquire) after each; a block takes tasks b,
//    b + G, ... of each matrix. Variants: arrivals spread over several
//    counters, polls spaced by __nanosleep, smaller tasks ("fine").
//  * persistent + prefetch: the same, and before it arrives at the barrier a
//    block asks L2 for the first P KB of its own tasks of the next matrix
//    (weights are constant: fetching them early is allowed by the dependency),
//    so the DRAM stream does not stop while the grid drains.
//  * persistent, no barrier: the same walk with no dependency at all, the
//    ceiling of this structure.
//  * "read" forms: the same walks reading the same bytes with no math.
//  * a diagnostic body (its sums are not the matrices'): the pair dot with every
//    lane reading the same two activation blocks, which bounds what the
//    activations' L1 traffic costs.
// Every dot form runs the same task body (a warp owns rows, lanes walk the
// 64-value pairs with the production DotUnit<Q4_K>), so its y is compared bit for
// bit against the chain's.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "bench/gpu/probe_common.h"
#include "bench/gpu/probe_cuda_check.h"
#include "kernels/quant_device.h"

namespace rocmforge::probe {
namespace {

using gpu::ActQ8;

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int64_t kDim = 4096, kFfn = 14336;
constexpr int kLayers = 32;

// One matrix of the walk. A task is kWarps warps: groups of `wpr` warps own
// `rpg` consecutive rows each (wpr > 1 splits a row's pairs over warps, summed
// through shared memory), so a task covers kWarps / wpr * rpg rows.
struct Mat {
  const uint8_t* w;
  const ActQ8* x;
  float* y;
  int64_t rows, cols;
  int wpr, rpg;
};
__host__ __device__ constexpr int64_t RowBytes(int64_t cols) { return cols / 256 * 144; }
__host__ __device__ inline int TaskRows(const Mat& m) { return kWarps / m.wpr * m.rpg; }
__host__ __device__ inline int64_t Tasks(const Mat& m) { return m.rows / TaskRows(m); }

// The task bodies: the production pair dot; the same weight bytes (a pair's 32
// quant bytes and its block's 16-byte header) read and folded into an integer,
// no dot products; and, as a diagnostic (its sums are not the matrix's), the
// pair dot with every lane reading the same two activation blocks, so the
// activations cost no L1 traffic.
enum Body { kDot = 0, kRead = 1, kDotOneX = 2 };
template <int kBody>
__device__ __forceinline__ void Task(const Mat& m, int64_t t) {
  __shared__ float part[kWarps][2];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / m.wpr, wig = warp % m.wpr;
  const int64_t r0 = t * TaskRows(m) + static_cast<int64_t>(group) * m.rpg;
  const int64_t row_bytes = RowBytes(m.cols), pairs = m.cols / 64;
  float acc[2] = {0.0f, 0.0f};
  unsigned bits = 0;
  for (int64_t p = wig * 32 + lane; p < pairs; p += 32 * m.wpr) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (i >= m.rpg) break;
      const uint8_t* row = m.w + (r0 + i) * row_bytes;
      if constexpr (kBody == kDot) {
        acc[i] += gpu::DotUnit<GgmlType::Q4_K>(row, p, m.x);
      } else if constexpr (kBody == kDotOneX) {
        acc[i] += gpu::DotPairK<GgmlType::Q4_K>(row, p, m.x);
      } else {
        const uint8_t* blk = row + p / 4 * 144;
        const uint4 h = *reinterpret_cast<const uint4*>(blk);
        const uint4 a = *reinterpret_cast<const uint4*>(blk + 16 + (p % 4) * 32);
        const uint4 b = *reinterpret_cast<const uint4*>(blk + 32 + (p % 4) * 32);
        bits ^= h.x ^ a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
      }
    }
  }
  if constexpr (kBody == kRead) acc[0] = static_cast<float>(bits & 0xffff);
#pragma unroll
  for (int i = 0; i < 2; ++i) acc[i] = WarpSum(acc[i]);
  if (m.wpr == 1) {
    if (lane < m.rpg) m.y[r0 + lane] = lane == 0 ? acc[0] : acc[1];
    return;
  }
  if (lane == 0) {
    part[warp][0] = acc[0];
    part[warp][1] = acc[1];
  }
  __syncthreads();
  if (wig == 0 && lane < m.rpg) {
    float s = 0.0f;
    for (int k = 0; k < m.wpr; ++k) s += part[warp + k][lane];
    m.y[r0 + lane] = s;
  }
  __syncthreads();  // part is reused by the next task
}

// ---- chain: one PDL launch a matrix ----------------------------------------
template <int kBody>
__global__ void __launch_bounds__(kThreads) ChainKernel(const Mat* mats, int i) {
  gpu::GridDependencyBegin();
  const Mat m = mats[i];
  Task<kBody>(m, blockIdx.x);
}

// ---- persistent ------------------------------------------------------------
// Every block arrives once per barrier; the counters only grow within a replay
// (the graph zeroes them first), so barrier k passes at k * gridDim.x arrivals.
// With `subs` > 1 the arrivals spread over that many counters (block b on
// counter b % subs, each on its own 256-byte stretch, so on another L2 slice)
// and a waiting block polls all of them: fewer reductions queue on one address.
__device__ __forceinline__ void GridBarrier(unsigned* count, unsigned k, int subs, int sleep_ns) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(count + 64 * (blockIdx.x % subs)) : "memory");
    for (int s = 0; s < subs; ++s) {
      const unsigned per = gridDim.x / subs + (static_cast<unsigned>(s) < gridDim.x % subs ? 1u : 0u);
      while (LoadAcquire(count + 64 * s) < k * per) {
        if (sleep_ns > 0) __nanosleep(static_cast<unsigned>(sleep_ns));
      }
    }
  }
  __syncthreads();
}

// The first `budget` bytes of this block's tasks of m into L2.
__device__ __forceinline__ void PrefetchOwnTasks(const Mat& m, int64_t budget) {
  const int64_t task_bytes = TaskRows(m) * RowBytes(m.cols), tasks = Tasks(m);
  int64_t left = budget;
  for (int64_t t = blockIdx.x; t < tasks && left > 0; t += gridDim.x) {
    const int64_t n = task_bytes < left ? task_bytes : left;
    const uint8_t* base = m.w + t * task_bytes;
    for (int64_t off = static_cast<int64_t>(threadIdx.x) * 128; off < n; off += kThreads * 128) {
      gpu::PrefetchL2(base + off);
    }
    left -= n;
  }
}

template <int kBody>
__global__ void __launch_bounds__(kThreads) PersistentKernel(const Mat* mats, int n, unsigned* count,
                                                            int barrier, int prefetch_kb, int subs, int sleep_ns) {
  for (int i = 0; i < n; ++i) {
    const Mat m = mats[i];
    const int64_t tasks = Tasks(m);
    for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) Task<kBody>(m, t);
    if (i + 1 == n) break;
    if (prefetch_kb > 0) PrefetchOwnTasks(mats[i + 1], static_cast<int64_t>(prefetch_kb) << 10);
    if (barrier) GridBarrier(count, static_cast<unsigned>(i + 1), subs, sleep_ns);
  }
}

// ---- host ------------------------------------------------------------------
ActQ8* RandomActivations(int64_t cols, std::mt19937& rng) {
  const std::vector<ActQ8> xs = RandomActQ8(cols / 32, rng, [] { return 1e-3f; });
  ActQ8* d = nullptr;
  CHECK(cudaMalloc(&d, xs.size() * sizeof(ActQ8)));
  CHECK(cudaMemcpy(d, xs.data(), xs.size() * sizeof(ActQ8), cudaMemcpyHostToDevice));
  return d;
}

double CopyTBps(cudaStream_t st) {
  const size_t bytes = size_t{1} << 30;
  void *a, *b;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  float best = 1e9f;
  for (int i = 0; i < 6; ++i) {
    CHECK(cudaEventRecord(e0, st));
    CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, st));
    CHECK(cudaEventRecord(e1, st));
    CHECK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i > 0) best = std::min(best, ms);
  }
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  return 2.0 * static_cast<double>(bytes) / (best * 1e-3) / 1e12;  // read + write
}

struct Form {
  const char* name;
  int body;  // Body
  bool persistent, barrier;
  int blocks_per_sm, prefetch_kb;
  bool fine = false;  // one row a warp everywhere (more, smaller tasks)
  int subs = 1, sleep_ns = 0;
};

int Main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  int occ_math = 0, occ_read = 0, occ_one_x = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_math, PersistentKernel<kDot>, kThreads, 0));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_read, PersistentKernel<kRead>, kThreads, 0));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_one_x, PersistentKernel<kDotOneX>, kThreads, 0));
  std::printf("device: %s, %d SMs, %d MB L2; resident blocks an SM: math %d, read %d, one x %d\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, occ_math, occ_read, occ_one_x);
  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const double copy = CopyTBps(st);
  std::printf("device copy (read + write): %.2f TB/s\n", copy);

  // One random matrix of each kind, copied to every layer.
  std::mt19937 rng(20261128);
  struct Kind {
    int64_t rows, cols;
    int wpr, rpg;
  };
  // Task shapes: enough warps for the 4096-row matrices (O one row a warp, down
  // two warps a row), two rows a warp where rows are many.
  const Kind kinds[4] = {{6144, kDim, 1, 2}, {kDim, kDim, 1, 1}, {2 * kFfn, kDim, 1, 2}, {kDim, kFfn, 2, 1}};
  ActQ8* x_dim = RandomActivations(kDim, rng);
  ActQ8* x_ffn = RandomActivations(kFfn, rng);
  std::vector<Mat> mats;
  std::vector<float*> ys(4);
  double bytes = 0.0;
  for (int k = 0; k < 4; ++k) {
    std::vector<uint8_t> host;
    const int64_t rb = RowBytes(kinds[k].cols);
    FillRandomQ4K(host, kinds[k].rows, rb, rng);
    CHECK(cudaMalloc(&ys[k], kinds[k].rows * sizeof(float)));
    uint8_t* first = nullptr;
    for (int l = 0; l < kLayers; ++l) {
      uint8_t* w = nullptr;
      CHECK(cudaMalloc(&w, host.size()));
      if (first == nullptr) {
        CHECK(cudaMemcpy(w, host.data(), host.size(), cudaMemcpyHostToDevice));
        first = w;
      } else {
        CHECK(cudaMemcpy(w, first, host.size(), cudaMemcpyDeviceToDevice));
      }
      bytes += static_cast<double>(host.size());
      mats.push_back({w, kinds[k].cols == kDim ? x_dim : x_ffn, ys[k], kinds[k].rows, kinds[k].cols, kinds[k].wpr,
                      kinds[k].rpg});
    }
  }
  // Walk order: layer by layer, Q/K/V, O, gate/up, down.
  std::vector<Mat> walk;
  for (int l = 0; l < kLayers; ++l) {
    for (int k = 0; k < 4; ++k) walk.push_back(mats[static_cast<size_t>(k * kLayers + l)]);
  }
  const int n = static_cast<int>(walk.size());
  std::vector<Mat> walk_fine = walk;
  for (Mat& m : walk_fine) m.rpg = 1;
  Mat *d_walk = nullptr, *d_walk_fine = nullptr;
  CHECK(cudaMalloc(&d_walk, walk.size() * sizeof(Mat)));
  CHECK(cudaMemcpy(d_walk, walk.data(), walk.size() * sizeof(Mat), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&d_walk_fine, walk.size() * sizeof(Mat)));
  CHECK(cudaMemcpy(d_walk_fine, walk_fine.data(), walk.size() * sizeof(Mat), cudaMemcpyHostToDevice));
  constexpr int kMaxSubs = 16;
  unsigned* count = nullptr;
  CHECK(cudaMalloc(&count, 64 * kMaxSubs * sizeof(unsigned)));
  std::printf("%d matrices, %.3f GB: %.3f ms at the copy bandwidth\n", n, bytes / 1e9, bytes / (copy * 1e12) * 1e3);

  const int sms = prop.multiProcessorCount;
  const std::vector<Form> forms = {
      {"chain (one PDL launch a matrix)", kDot, false, true, 0, 0},
      {"persistent, barrier", kDot, true, true, 0, 0},
      {"persistent, barrier, 2 blocks an SM", kDot, true, true, 2, 0},
      {"persistent, barrier + prefetch 16 KB a block", kDot, true, true, 0, 16},
      {"persistent, barrier + prefetch 64 KB a block", kDot, true, true, 0, 64},
      {"persistent, 8 arrival counters", kDot, true, true, 0, 0, false, 8},
      {"persistent, 16 arrival counters", kDot, true, true, 0, 0, false, 16},
      {"persistent, 1 counter, polls 100 ns apart", kDot, true, true, 0, 0, false, 1, 100},
      {"persistent, 8 counters, polls 100 ns apart", kDot, true, true, 0, 0, false, 8, 100},
      {"persistent, no barrier (ceiling)", kDot, true, false, 0, 0},
      {"fine tasks: chain", kDot, false, true, 0, 0, true},
      {"fine tasks: persistent, barrier", kDot, true, true, 0, 0, true},
      {"fine tasks: persistent, 8 counters", kDot, true, true, 0, 0, true, 8},
      {"fine tasks: persistent, 8 counters + prefetch 16 KB", kDot, true, true, 0, 16, true, 8},
      {"fine tasks: persistent, no barrier", kDot, true, false, 0, 0, true},
      {"read: chain", kRead, false, true, 0, 0},
      {"read: persistent, barrier", kRead, true, true, 0, 0},
      {"read: persistent, barrier + prefetch 64 KB", kRead, true, true, 0, 64},
      {"read: persistent, no barrier", kRead, true, false, 0, 0},
      {"(diagnostic) one shared activation pair: chain", kDotOneX, false, true, 0, 0},
      {"(diagnostic) one shared activation pair: no barrier", kDotOneX, true, false, 0, 0},
  };
  std::vector<std::vector<float>> y_ref(4), y_got(4);
  int failures = 0;
  for (int round = 0; round < 2; ++round) {
    for (const Form& f : forms) {
      const int occ = f.body == kDot ? occ_math : f.body == kRead ? occ_read : occ_one_x;
      const int per_sm = f.blocks_per_sm > 0 ? f.blocks_per_sm : occ;
      const unsigned grid = static_cast<unsigned>(sms * per_sm);
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
      if (f.persistent) {
        CHECK(cudaMemsetAsync(count, 0, 64 * kMaxSubs * sizeof(unsigned), st));
        const auto kernel = f.body == kDot    ? PersistentKernel<kDot>
                            : f.body == kRead ? PersistentKernel<kRead>
                                              : PersistentKernel<kDotOneX>;
        kernel<<<grid, kThreads, 0, st>>>(f.fine ? d_walk_fine : d_walk, n, count, f.barrier ? 1 : 0, f.prefetch_kb,
                                          f.subs, f.sleep_ns);
        CHECK(cudaGetLastError());
      } else {
        for (int i = 0; i < n; ++i) {
          LaunchPdl(f.body == kDot ? ChainKernel<kDot> : f.body == kRead ? ChainKernel<kRead> : ChainKernel<kDotOneX>,
                    static_cast<unsigned>(Tasks((f.fine ? walk_fine : walk)[static_cast<size_t>(i)])), kThreads, st,
                    static_cast<const Mat*>(f.fine ? d_walk_fine : d_walk), i);
        }
      }
      CHECK(cudaStreamEndCapture(st, &graph));
      CHECK(cudaGraphInstantiate(&exec, graph, 0));
      for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, st));
      CHECK(cudaStreamSynchronize(st));
      if (f.body == kDot) {
        const bool first = y_ref[0].empty();
        for (int k = 0; k < 4; ++k) {
          auto& dst = first ? y_ref[k] : y_got[k];
          dst.resize(static_cast<size_t>(kinds[k].rows));
          CHECK(cudaMemcpy(dst.data(), ys[k], dst.size() * sizeof(float), cudaMemcpyDeviceToHost));
          if (!first && std::memcmp(dst.data(), y_ref[k].data(), dst.size() * sizeof(float)) != 0) {
            ++failures;
            std::printf("  %s: matrix kind %d differs from the chain's\n", f.name, k);
          }
        }
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
        us.push_back(ms * 1e3f / 10);
      }
      std::sort(us.begin(), us.end());
      const double tbps = bytes / (us[3] * 1e-6) / 1e12;
      std::printf("%-48s grid %5u: %8.1f us a token (median of 7; min %.1f) = %.2f TB/s = %3.0f%% of copy\n", f.name,
                  f.persistent ? grid : 0u, us[3], us[0], tbps, 100.0 * tbps / copy);
      CHECK(cudaEventDestroy(a));
      CHECK(cudaEventDestroy(b));
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
