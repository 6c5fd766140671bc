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
//  * ring (RingKernel, below): one block an SM, a producer warp streaming the
//    block's stages of every matrix into 11 shared-memory slots with the bulk
//    copy engine (never waiting on the grid: weights do not depend on
//    activations) and groups of eight consumer warps computing from the slots,
//    only they taking the grid barrier; so the DRAM stream can run on while the
//    consumers wait, as far as the ring reaches. Variants: consumers that only
//    release the slots ("copy only": the copy path's own ceiling), stages
//    interleaved over the blocks instead of a slice each, activations staged
//    in shared memory, and the stages some way ahead of the copies asked into
//    L2 so more than the ring is in flight.
// Every dot form runs the same task body (a warp owns rows, lanes walk the
// 64-value pairs with the production DotUnit<Q4_K>), so its y is compared bit for
// bit against the chain's (the ring's rows of 14336 columns, whose pairs it
// splits over four warps instead of two, within 1e-5 of the largest |y|).
// RF_PROBE_ONLY='ring|read: chain' runs only the forms whose names hold one of
// the |-separated texts (and the chain, the reference).
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

#include "bench/gpu/probe_common.h"
#include "bench/gpu/probe_cuda_check.h"
#include "kernels/mbarrier_device.h"
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

// ---- persistent ring ---------------------------------------------------------
// One block an SM: a producer warp streams the block's stages of every
// matrix, in order, into a ring of shared-memory slots with the bulk copy
// engine (one copy a stage: its rows are contiguous), never waiting on the
// grid (weights do not depend on activations); groups of eight consumer warps
// compute from the slots and only they take the grid barrier between
// matrices. While they wait, the producer keeps the DRAM stream busy until the
// ring is full (11 slots, 198 KB an SM, 26 MB in flight).
// A stage is RingStageRows rows (8 of 4096 columns, 2 of 14336: at most a
// slot); a consumer warp takes one row, or a quarter of one (its pairs
// interleaved as the chain's split rows are, partial sums combined in a fixed
// order at the end of the matrix). Which stages a block takes: `interleave`
// 0, rows [rows * b / G, rows * (b + 1) / G) in stages from its first row; 1,
// stages b, b + G, ... of the matrix. Consumer group c takes the block's
// stages c, c + groups, ...; stage j of the block's whole walk lives in slot
// j % slots. Body kRead: the consumers only wait and release (the copy path
// alone; y is not written).
constexpr int kWarpsAGroup = 8;
constexpr int kMaxGroups = 3;
constexpr int kSlotBytes = kWarpsAGroup * 16 * 144;  // eight 4096-column rows
constexpr int kMaxSlots = 11;
constexpr int kMaxXBytes = static_cast<int>(kFfn / 32 * sizeof(ActQ8));
constexpr int kMaxPartRows = 96;  // split rows a block can own in one matrix

__host__ __device__ inline int RingStageRows(int64_t cols) {
  const int64_t r = kSlotBytes / RowBytes(cols);
  return r >= kWarpsAGroup ? kWarpsAGroup : static_cast<int>(r);
}

// The stages block b of G takes in matrix m.
struct RingShare {
  int64_t first, end;  // rows (interleave 0) or stages (interleave 1)
  int64_t count;       // stages
  int rps, interleave;
  int64_t rows_total;
  __host__ __device__ RingShare(const Mat& m, int64_t b, int64_t G, int il) : rps(RingStageRows(m.cols)), interleave(il) {
    rows_total = m.rows;
    if (il == 0) {
      first = m.rows * b / G;
      end = m.rows * (b + 1) / G;
      count = (end - first + rps - 1) / rps;
    } else {
      const int64_t stages = (m.rows + rps - 1) / rps;
      first = b;
      end = stages;
      count = b < stages ? (stages - b + G - 1) / G : 0;
    }
  }
  // The first row of the block's k-th stage and its row count.
  __host__ __device__ void Stage(int64_t k, int64_t G, int64_t* row0, int* rows) const {
    int64_t r0, lim;
    if (interleave == 0) {
      r0 = first + k * rps;
      lim = end;
    } else {
      r0 = (first + k * G) * rps;
      lim = rows_total;
    }
    *row0 = r0;
    *rows = static_cast<int>(lim - r0 < rps ? lim - r0 : rps);
  }
};

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// Synchronizes the first `threads` threads of the block (the consumers) on
// named barrier 1, leaving the producer warp free.
__device__ __forceinline__ void ConsumerSync(unsigned threads) {
  asm volatile("bar.sync 1, %0;\n" ::"r"(threads) : "memory");
}

__global__ void __launch_bounds__((kWarpsAGroup * kMaxGroups + 1) * 32, 1)
    RingKernel(const Mat* mats, int n, unsigned* count, int barrier, int slots, int x_in_smem, int groups, int body,
               int interleave, int l2_ahead) {
#if defined(RF_MBARRIER_AVAILABLE)  // (the host pass sees an empty body)
  extern __shared__ __align__(128) uint8_t ring[];
  __shared__ uint64_t full[kMaxSlots], empty[kMaxSlots];
  __shared__ float parts[kMaxPartRows][kWarpsAGroup];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const unsigned consumers = static_cast<unsigned>(groups * kWarpsAGroup * 32);
  if (threadIdx.x == 0) {
    for (int s = 0; s < slots; ++s) {
      gpu::MbarInit(SmemAddr(&full[s]), 1);
      gpu::MbarInit(SmemAddr(&empty[s]), kWarpsAGroup);
    }
    gpu::MbarInitFence();
  }
  __syncthreads();
  const int64_t G = gridDim.x, b = blockIdx.x;
  if (warp == groups * kWarpsAGroup) {  // the producer: one lane issues every copy
    if (lane != 0) return;
    // With l2_ahead > 0, the stage that many ahead of each copy is asked into
    // L2 when the copy is issued, so more than the ring is in flight.
    int pi = 0;
    int64_t pk = 0;
    auto prefetch_next = [&] {  // the next stage of the walk into L2
      while (pi < n) {
        const Mat pm = mats[pi];
        const RingShare ps(pm, b, G, interleave);
        if (pk < ps.count) {
          int64_t row0;
          int rows;
          ps.Stage(pk++, G, &row0, &rows);
          const int64_t rb = RowBytes(pm.cols);
          asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(pm.w + row0 * rb),
                       "r"(static_cast<unsigned>(rows * rb))
                       : "memory");
          return;
        }
        ++pi;
        pk = 0;
      }
    };
    for (int a = 0; a < l2_ahead; ++a) prefetch_next();
    int64_t j = 0;
    for (int i = 0; i < n; ++i) {
      const Mat m = mats[i];
      const RingShare share(m, b, G, interleave);
      const int64_t rb = RowBytes(m.cols);
      for (int64_t k = 0; k < share.count; ++k, ++j) {
        int64_t row0;
        int rows;
        share.Stage(k, G, &row0, &rows);
        if (l2_ahead > 0) prefetch_next();
        const int slot = static_cast<int>(j % slots);
        gpu::MbarWait(SmemAddr(&empty[slot]), (static_cast<unsigned>(j / slots) & 1) ^ 1);
        const unsigned bytes = static_cast<unsigned>(rows * rb);
        gpu::MbarExpectTx(SmemAddr(&full[slot]), bytes);
        gpu::BulkCopyToShared(SmemAddr(ring + slot * kSlotBytes), m.w + row0 * rb, bytes, SmemAddr(&full[slot]));
      }
    }
    return;
  }
  const int group = warp / kWarpsAGroup, wr = warp % kWarpsAGroup;
  const ActQ8* xs = reinterpret_cast<const ActQ8*>(ring + slots * kSlotBytes);
  int64_t j0 = 0;  // the block's first stage of this matrix in its walk
  for (int i = 0; i < n; ++i) {
    const Mat m = mats[i];
    if (i > 0 && barrier) {
      if (threadIdx.x == 0) {
        while (LoadAcquire(count) < static_cast<unsigned>(i * G)) {
        }
      }
      ConsumerSync(consumers);
    }
    const ActQ8* x = m.x;
    if (x_in_smem) {  // the activations into shared memory with contiguous 16-byte loads
      ConsumerSync(consumers);  // no warp still reads the last matrix's
      const unsigned n16 = static_cast<unsigned>(m.cols / 32 * sizeof(ActQ8) / 16);
      for (unsigned k = threadIdx.x; k < n16; k += consumers) {
        reinterpret_cast<uint4*>(ring + slots * kSlotBytes)[k] = reinterpret_cast<const uint4*>(m.x)[k];
      }
      ConsumerSync(consumers);
      x = xs;
    }
    const RingShare share(m, b, G, interleave);
    const int64_t rb = RowBytes(m.cols), pairs = m.cols / 64;
    const int wpr = kWarpsAGroup / share.rps, lr = wr / wpr, part = wr % wpr;
    for (int64_t k = group; k < share.count; k += groups) {
      int64_t row0;
      int rows;
      share.Stage(k, G, &row0, &rows);
      const int64_t j = j0 + k;
      const int slot = static_cast<int>(j % slots);
      gpu::MbarWait(SmemAddr(&full[slot]), static_cast<unsigned>(j / slots) & 1);
      float acc = 0.0f;
      const bool mine = lr < rows && body == kDot;
      if (mine) {
        const uint8_t* w = ring + slot * kSlotBytes + lr * rb;
        for (int64_t p = part * 32 + lane; p < pairs; p += 32 * wpr) acc += gpu::DotUnit<GgmlType::Q4_K>(w, p, x);
      }
      __syncwarp();
      if (lane == 0) gpu::MbarArrive(SmemAddr(&empty[slot]));
      acc = WarpSum(acc);
      if (mine && lane == 0) {
        if (wpr == 1) {
          m.y[row0 + lr] = acc;
        } else {
          parts[k * share.rps + lr][part] = acc;
        }
      }
    }
    if (wpr > 1 && body == kDot) {  // split rows: the parts summed in order
      ConsumerSync(consumers);
      for (int64_t k = threadIdx.x / share.rps; k < share.count; k += consumers / share.rps) {
        int64_t row0;
        int rows;
        share.Stage(k, G, &row0, &rows);
        const int r = static_cast<int>(threadIdx.x % share.rps);
        if (r < rows) {
          float sum = 0.0f;
          for (int q = 0; q < wpr; ++q) sum += parts[k * share.rps + r][q];
          m.y[row0 + r] = sum;
        }
      }
      if (!barrier) ConsumerSync(consumers);  // parts is reused by the next split matrix
    }
    j0 += share.count;
    if (barrier && i + 1 < n) {
      ConsumerSync(consumers);  // every consumer's y is written
      if (threadIdx.x == 0) {
        __threadfence();
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(count) : "memory");
      }
    }
  }
#endif
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

bool Selected(const std::string& name) {
  const char* only = std::getenv("RF_PROBE_ONLY");
  if (only == nullptr) return true;
  const std::string list = only;
  for (size_t at = 0; at <= list.size();) {
    const size_t bar = std::min(list.find('|', at), list.size());
    if (bar > at && name.find(list.substr(at, bar - at)) != std::string::npos) return true;
    at = bar + 1;
  }
  return false;
}

struct Form {
  const char* name;
  int body;  // Body
  bool persistent, barrier;
  int blocks_per_sm, prefetch_kb;
  bool fine = false;  // one row a warp everywhere (more, smaller tasks)
  int subs = 1, sleep_ns = 0;
  int ring_slots = 0;    // > 0: RingKernel with this many slots (one block an SM)
  bool x_smem = false;   // RingKernel: activations staged in shared memory
  int groups = 1;        // RingKernel: consumer groups of eight warps
  int interleave = 0;    // RingKernel: stages b, b + G, ... instead of a slice
  int l2_ahead = 0;      // RingKernel: stages asked into L2 ahead of the copies
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
      {"ring copy only, no barrier", kRead, true, false, 1, 0, false, 1, 0, 11, true, 1},
      {"ring copy only, barrier", kRead, true, true, 1, 0, false, 1, 0, 11, true, 1},
      {"ring copy only, interleaved, barrier", kRead, true, true, 1, 0, false, 1, 0, 11, true, 1, 1},
      {"ring copy only, barrier, L2 8 stages ahead", kRead, true, true, 1, 0, false, 1, 0, 11, true, 1, 0, 8},
      {"ring copy only, barrier, L2 16 stages ahead", kRead, true, true, 1, 0, false, 1, 0, 11, true, 1, 0, 16},
      {"ring 2 groups, barrier, x in smem", kDot, true, true, 1, 0, false, 1, 0, 11, true, 2},
      {"ring 3 groups, no barrier, x in smem", kDot, true, false, 1, 0, false, 1, 0, 11, true, 3},
      {"ring 3 groups, barrier, x in smem", kDot, true, true, 1, 0, false, 1, 0, 11, true, 3},
      {"ring 3 groups, barrier, x from L1", kDot, true, true, 1, 0, false, 1, 0, 11, false, 3},
      {"ring 3 groups, 6 slots, barrier, x in smem", kDot, true, true, 1, 0, false, 1, 0, 6, true, 3},
      {"ring 3 groups, interleaved, no barrier, x in smem", kDot, true, false, 1, 0, false, 1, 0, 11, true, 3, 1},
      {"ring 3 groups, interleaved, barrier, x in smem", kDot, true, true, 1, 0, false, 1, 0, 11, true, 3, 1},
      {"ring 3 groups, interleaved, barrier, x smem, L2 16", kDot, true, true, 1, 0, false, 1, 0, 11, true, 3, 1, 16},
  };
  const int ring_smem_max = kMaxSlots * kSlotBytes + kMaxXBytes;
  CHECK(cudaFuncSetAttribute(RingKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, ring_smem_max));
  int occ_ring = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_ring, RingKernel, (kWarpsAGroup * kMaxGroups + 1) * 32,
                                                      ring_smem_max));
  std::printf("ring: %d block(s) an SM resident with %d slots + x\n", occ_ring, kMaxSlots);
  std::vector<std::vector<float>> y_ref(4), y_got(4);
  int failures = 0;
  for (int round = 0; round < 2; ++round) {
    for (const Form& f : forms) {
      // RF_PROBE_ONLY=text[|text...]: only the forms whose name holds one of
      // them (and the chain, whose y the others are checked against).
      if (!Selected(f.name) && &f != &forms[0]) continue;
      const int occ = f.body == kDot ? occ_math : f.body == kRead ? occ_read : occ_one_x;
      const int per_sm = f.blocks_per_sm > 0 ? f.blocks_per_sm : occ;
      const unsigned grid = static_cast<unsigned>(sms * per_sm);
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
      if (f.ring_slots > 0) {
        CHECK(cudaMemsetAsync(count, 0, 64 * kMaxSubs * sizeof(unsigned), st));
        const int smem = f.ring_slots * kSlotBytes + (f.x_smem ? kMaxXBytes : 0);
        const unsigned threads = static_cast<unsigned>((kWarpsAGroup * f.groups + 1) * 32);
        RingKernel<<<static_cast<unsigned>(sms), threads, static_cast<size_t>(smem), st>>>(
            d_walk, n, count, f.barrier ? 1 : 0, f.ring_slots, f.x_smem ? 1 : 0, f.groups, f.body, f.interleave, f.l2_ahead);
        CHECK(cudaGetLastError());
      } else if (f.persistent) {
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
      if (f.body == kDot) {  // (the ring's copy-only body writes no y)
        const bool first = y_ref[0].empty();
        for (int k = 0; k < 4; ++k) {
          auto& dst = first ? y_ref[k] : y_got[k];
          dst.resize(static_cast<size_t>(kinds[k].rows));
          CHECK(cudaMemcpy(dst.data(), ys[k], dst.size() * sizeof(float), cudaMemcpyDeviceToHost));
          if (first) continue;
          if (f.ring_slots > 0) {  // the ring sums a down row's pairs in another order
            double worst = 0.0, scale = 0.0;
            for (size_t r = 0; r < dst.size(); ++r) {
              worst = std::max(worst, static_cast<double>(std::fabs(dst[r] - y_ref[k][r])));
              scale = std::max(scale, static_cast<double>(std::fabs(y_ref[k][r])));
            }
            if (!(worst <= 1e-5 * scale) || (k != 3 && worst != 0.0)) {
              ++failures;
              std::printf("  %s: matrix kind %d differs from the chain's by %g (largest |y| %g)\n", f.name, k, worst,
                          scale);
            }
          } else if (std::memcmp(dst.data(), y_ref[k].data(), dst.size() * sizeof(float)) != 0) {
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
