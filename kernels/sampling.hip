// Token sampling on the GPU, one block per row; only the chosen ids (and
// logprobs) go back to the host.
//
// The distribution, in this order (docs/gpu.md; the CPU sampler is the reference):
//   repetition penalty over the distinct recent tokens (l > 0 ? l / p : l * p);
//   greedy (temperature <= 0): argmax, lowest id on ties;
//   else s = l * (1 / temperature); candidates ordered by s descending, id ascending;
//   top-k keeps the first k; top-p keeps the shortest prefix whose probability
//   mass (renormalised over the top-k set) reaches top_p; min-p keeps s >= max + log(min_p);
//   u = SampleUniform(seed, step) picks the first candidate, in that order,
//   whose cumulative mass exceeds u * (mass of all candidates).
// logprob = log-softmax of the chosen token over the whole vocabulary after
// the penalty and temperature (temperature 1 for greedy rows).
//
// Selections (k-th candidate, mass prefix, the draw) are radix selects over
// order-preserving 32-bit keys: four 8-bit histogram passes, no sort.
#include "engine/sampling/philox.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t Key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Candidate set: key > k || (key == k && index <= i).
struct Cut {
  uint32_t key;
  int index;
};
__device__ __forceinline__ bool Kept(uint32_t key, int i, Cut c) {
  return key > c.key || (key == c.key && i <= c.index);
}

struct Shared {
  double hist[256];  // double: 128k candidates of ~1e-5 mass each need it to match the CPU's sums
  float red[kMaxWaves];
  int ired[kMaxWaves];
  int scan[kThreads];
  double dred[kMaxWaves];
  uint32_t sel_prefix;
  double sel_above;
  int sel_index;
};

// Block exclusive prefix sum of one int per thread (blockDim.x == kThreads).
__device__ int BlockExclusiveScan(int v, Shared& sh) {
  __syncthreads();
  sh.scan[threadIdx.x] = v;
  __syncthreads();
  for (int off = 1; off < kThreads; off <<= 1) {
    const int tid = static_cast<int>(threadIdx.x);
    const int add = tid >= off ? sh.scan[tid - off] : 0;
    __syncthreads();
    sh.scan[threadIdx.x] += add;
    __syncthreads();
  }
  return sh.scan[threadIdx.x] - v;
}

// Finds the candidate (in order: key descending, index ascending) at which the
// cumulative weight first exceeds `target`; weight is 1 (kCount) or exp(s - m).
template <bool kCount>
__device__ Cut Select(const float* s, int vocab, Cut cut, float m, double target, Shared& sh) {
  uint32_t prefix = 0, mask = 0;
  double above = 0.0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.hist[b] = 0.0;
    __syncthreads();
#pragma unroll 4
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float v = s[i];
      const uint32_t k = Key(v);
      if ((k & mask) == prefix && Kept(k, i, cut)) {
        atomicAdd(&sh.hist[(k >> shift) & 255u], kCount ? 1.0 : static_cast<double>(expf(v - m)));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int chosen = -1, last = -1;
      double above_last = above;
      for (int b = 255; b >= 0; --b) {
        const double w = sh.hist[b];
        if (w <= 0.0) continue;
        if (above + w > target) {
          chosen = b;
          break;
        }
        last = b;
        above_last = above;
        above += w;
      }
      if (chosen < 0) {  // rounding put the target past the end: take the last candidate
        chosen = last < 0 ? 0 : last;
        above = above_last;
      }
      sh.sel_prefix = prefix | (static_cast<uint32_t>(chosen) << shift);
      sh.sel_above = above;
    }
    __syncthreads();
    prefix = sh.sel_prefix;
    above = sh.sel_above;
    mask |= 255u << shift;
    __syncthreads();
  }
  // Ties on the exact key: candidates with that key in index order, equal weights.
  const int chunk = (vocab + kThreads - 1) / kThreads;
  const int lo = threadIdx.x * chunk, hi = min(vocab, lo + chunk);
  int cnt = 0;
  double w_key = 0.0;
  for (int i = lo; i < hi; ++i) {
    const uint32_t k = Key(s[i]);
    if (k == prefix && Kept(k, i, cut)) {
      ++cnt;
      w_key = kCount ? 1.0 : static_cast<double>(expf(s[i] - m));
    }
  }
  __shared__ double w_shared;
  __shared__ int total;
  if (threadIdx.x == 0) {
    w_shared = 0.0;
    sh.sel_index = -1;
  }
  const int before = BlockExclusiveScan(cnt, sh);  // starts with a barrier
  if (threadIdx.x == kThreads - 1) total = before + cnt;
  if (cnt > 0 && before == 0) w_shared = w_key;
  __syncthreads();
  int j = 0;
  if (w_shared > 0.0) j = static_cast<int>(floor((target - above) / w_shared));
  j = max(0, min(j, total - 1));
  if (cnt > 0 && j >= before && j < before + cnt) {
    int seen = before;
    for (int i = lo; i < hi; ++i) {
      const uint32_t k = Key(s[i]);
      if (k == prefix && Kept(k, i, cut)) {
        if (seen == j) {
          sh.sel_index = i;
          break;
        }
        ++seen;
      }
    }
  }
  __syncthreads();
  const int index = sh.sel_index;
  __syncthreads();
  return Cut{prefix, index};
}

__device__ float BlockSumF(float v, Shared& sh) { return BlockSum(v, sh.red); }

__device__ double BlockSumD(double v, Shared& sh) {
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  const int n_waves = blockDim.x / kWaveSize;
  v = WaveSum(v);
  __syncthreads();
  if (lane == 0) sh.dred[wave] = v;
  __syncthreads();
  v = lane < n_waves ? sh.dred[lane] : 0.0;
  return WaveSum(v);
}

// Largest value, lowest index on ties; `exclude` lists ids to skip.
__device__ int BlockArgMax(const float* s, int vocab, const int32_t* exclude, int n_exclude,
                           Shared& sh) {
  float best = -INFINITY;
  int best_i = vocab;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    bool skip = false;
    for (int e = 0; e < n_exclude; ++e) skip |= exclude[e] == i;
    if (skip) continue;
    const float v = s[i];
    if (v > best || (v == best && i < best_i) || best_i == vocab) {
      best = v;
      best_i = i;
    }
  }
#pragma unroll
  for (int off = kWaveSize / 2; off > 0; off >>= 1) {
    const float ov = WaveShflXor(best, off);
    const int oi = WaveShflXor(best_i, off);
    if (oi < vocab && (best_i == vocab || ov > best || (ov == best && oi < best_i))) {
      best = ov;
      best_i = oi;
    }
  }
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  __syncthreads();
  if (lane == 0) {
    sh.red[wave] = best;
    sh.ired[wave] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int n_waves = blockDim.x / kWaveSize;
    for (int w = 0; w < n_waves; ++w) {
      const float ov = sh.red[w];
      const int oi = sh.ired[w];
      if (oi < vocab && (best_i == vocab || ov > best || (ov == best && oi < best_i))) {
        best = ov;
        best_i = oi;
      }
    }
    sh.sel_index = best_i;
  }
  __syncthreads();
  const int r = sh.sel_index;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* logits, int vocab, const SampleRowParams* params,
                 const int32_t* recent, SampleRowResult* results, float* scratch) {
  __shared__ Shared sh;
  const int row = blockIdx.x;
  const SampleRowParams p = params[row];
  float* s = scratch + static_cast<int64_t>(row) * vocab;
  const float* l = logits + static_cast<int64_t>(row) * vocab;
  const bool greedy = p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = l[i];
    s[i] = isfinite(v) ? v : -INFINITY;  // as the CPU sampler
  }
  __syncthreads();
  if (p.repetition_penalty != 1.0f) {
    const int32_t* rec = recent + p.recent_offset;
    for (int r = threadIdx.x; r < p.recent_count; r += blockDim.x) {
      const int tok = rec[r];
      bool dup = tok < 0 || tok >= vocab;
      for (int q = 0; q < r && !dup; ++q) dup = rec[q] == tok;
      if (!dup) {
        const float v = s[tok];
        s[tok] = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
      }
    }
    __syncthreads();
  }
  if (!greedy) {
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) s[i] = s[i] * inv_t;
    __syncthreads();
  }
  // Full-vocabulary log-sum-exp (for the logprob).
  float mx = -INFINITY;
#pragma unroll 4
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) mx = fmaxf(mx, s[i]);
  const float m = BlockMax(mx, sh.red);
  float z = 0.0f;
#pragma unroll 4
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) z += expf(s[i] - m);
  const float z_full = BlockSumF(z, sh);
  const float log_z = logf(z_full);

  int pick;
  if (m == -INFINITY) {
    pick = 0;  // nothing finite to sample from (the CPU sampler's answer too)
  } else if (greedy) {
    pick = BlockArgMax(s, vocab, nullptr, 0, sh);
  } else {
    Cut cut{0u, vocab};  // everything
    if (p.top_k > 0 && p.top_k < vocab) {
      cut = Select<true>(s, vocab, cut, m, static_cast<double>(p.top_k - 1), sh);
    }
    double zk = 0.0;
#pragma unroll 4
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      if (Kept(Key(s[i]), i, cut)) zk += expf(s[i] - m);
    }
    zk = BlockSumD(zk, sh);
    if (p.top_p < 1.0f) cut = Select<false>(s, vocab, cut, m, static_cast<double>(p.top_p) * zk, sh);
    if (p.min_p > 0.0f) {
      const uint32_t kmin = Key(m + logf(p.min_p));
      if (kmin > cut.key) cut = Cut{kmin, vocab};
    }
    double zc = 0.0;
#pragma unroll 4
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      if (Kept(Key(s[i]), i, cut)) zc += expf(s[i] - m);
    }
    zc = BlockSumD(zc, sh);
    const double u = SampleUniform(p.seed, p.step);
    pick = Select<false>(s, vocab, cut, m, u * zc, sh).index;
  }
  SampleRowResult* res = results + row;
  if (threadIdx.x == 0) {
    res->token = pick;
    // Nothing finite: -inf, as the CPU sampler (its log-sum-exp is 0 then).
    res->logprob = m == -INFINITY ? -INFINITY : s[pick] - m - log_z;
  }
  const int n_top = min(p.n_top_logprobs, kMaxTopLogprobs);
  __shared__ int32_t chosen[kMaxTopLogprobs];
  for (int k = 0; k < n_top; ++k) {
    const int id = BlockArgMax(s, vocab, chosen, k, sh);
    if (threadIdx.x == 0) {
      chosen[k] = id;
      res->top_ids[k] = id;
      res->top_logprobs[k] = m == -INFINITY ? -INFINITY : s[id] - m - log_z;
    }
    __syncthreads();
  }
}

// ---- greedy rows without penalty or top logprobs: many blocks per row.
// One block per row read the 128k logits of a decode step alone (~3% of a
// step); here each block reduces a chunk to (max, lowest argmax, sum of
// exp(s - max)) and a second kernel merges the chunks of a row.
constexpr int kGreedyThreads = 256;
constexpr int kGreedyPerBlock = 2048;  // logits per partial block
constexpr int kGreedyMaxChunks = 256;

struct GreedyPartial {
  float m;  // max (-inf when the chunk has nothing finite)
  float z;  // sum of exp(s - m)
  int index;  // lowest index holding m
};

__device__ __forceinline__ GreedyPartial Merge(GreedyPartial a, GreedyPartial b) {
  if (b.m == -INFINITY) return a;
  if (a.m == -INFINITY) return b;
  GreedyPartial r;
  r.m = fmaxf(a.m, b.m);
  r.z = a.z * expf(a.m - r.m) + b.z * expf(b.m - r.m);
  r.index = a.m == b.m ? min(a.index, b.index) : (a.m > b.m ? a.index : b.index);
  return r;
}

__device__ GreedyPartial BlockMerge(GreedyPartial p) {
  __shared__ GreedyPartial red[kMaxWaves];
#pragma unroll
  for (int off = kWaveSize / 2; off > 0; off >>= 1) {
    GreedyPartial o;
    o.m = WaveShflXor(p.m, off);
    o.z = WaveShflXor(p.z, off);
    o.index = WaveShflXor(p.index, off);
    p = Merge(p, o);
  }
  const int lane = threadIdx.x % kWaveSize, wave = threadIdx.x / kWaveSize;
  if (lane == 0) red[wave] = p;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x) / kWaveSize; ++w) p = Merge(p, red[w]);
  }
  return p;  // valid in thread 0
}

// grid: (chunks, rows).
__global__ void __launch_bounds__(kGreedyThreads)
    GreedyPartialKernel(const float* logits, int vocab, int chunk, GreedyPartial* partials) {
  const int row = blockIdx.y;
  const float* l = logits + static_cast<int64_t>(row) * vocab;
  const int lo = blockIdx.x * chunk, hi = min(vocab, lo + chunk);
  GreedyPartial p{-INFINITY, 0.0f, vocab};
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float v = l[i];
    if (!isfinite(v)) continue;  // as the CPU sampler: non-finite logits are -inf
    if (v > p.m) {
      p.z = p.z * expf(p.m - v) + 1.0f;  // exp(-inf) = 0 on the first value
      p.m = v;
      p.index = i;
    } else {
      p.z += expf(v - p.m);  // indices rise within a thread: ties keep the first
    }
  }
  p = BlockMerge(p);
  if (threadIdx.x == 0) partials[static_cast<int64_t>(row) * gridDim.x + blockIdx.x] = p;
}

// grid: rows. Greedy pick = lowest index of the maximum; logprob = s - m - log(z).
__global__ void __launch_bounds__(kGreedyThreads)
    GreedyFinishKernel(const GreedyPartial* partials, int n_chunks, SampleRowResult* results) {
  const int row = blockIdx.x;
  GreedyPartial p{-INFINITY, 0.0f, 0};
  for (int c = threadIdx.x; c < n_chunks; c += blockDim.x) {
    p = Merge(p, partials[static_cast<int64_t>(row) * n_chunks + c]);
  }
  p = BlockMerge(p);
  if (threadIdx.x == 0) {
    SampleRowResult* res = results + row;
    if (p.m == -INFINITY) {  // nothing finite to sample from: token 0, logprob -inf (as the CPU)
      res->token = 0;
      res->logprob = -INFINITY;
    } else {
      res->token = p.index;
      res->logprob = -logf(p.z);  // s[pick] - m - log z with s[pick] = m
    }
  }
}

int GreedyChunks(int vocab) {
  const int chunks = (vocab + kGreedyPerBlock - 1) / kGreedyPerBlock;
  return chunks < 1 ? 1 : (chunks > kGreedyMaxChunks ? kGreedyMaxChunks : chunks);
}

}  // namespace

size_t SampleScratchBytes(int n_rows, int vocab) {
  const size_t rows = static_cast<size_t>(n_rows);
  const size_t full = rows * static_cast<size_t>(vocab) * sizeof(float);
  const size_t greedy = rows * static_cast<size_t>(GreedyChunks(vocab)) * sizeof(GreedyPartial);
  return full > greedy ? full : greedy;
}

void LaunchSampleGreedy(const float* logits, int n_rows, int vocab, SampleRowResult* results,
                        void* scratch, Stream s) {
  if (n_rows == 0 || vocab <= 0) return;
  const int chunks = GreedyChunks(vocab);
  const int chunk = (vocab + chunks - 1) / chunks;
  auto* partials = static_cast<GreedyPartial*>(scratch);
  GreedyPartialKernel<<<dim3(chunks, n_rows), kGreedyThreads, 0, ToStream(s)>>>(logits, vocab, chunk,
                                                                              partials);
  GreedyFinishKernel<<<n_rows, kGreedyThreads, 0, ToStream(s)>>>(partials, chunks, results);
}

void LaunchSample(const float* logits, int n_rows, int vocab, const SampleRowParams* params,
                  const int32_t* recent, SampleRowResult* results, void* scratch, Stream s) {
  if (n_rows == 0) return;
  SampleKernel<<<n_rows, kThreads, 0, ToStream(s)>>>(logits, vocab, params, recent, results,
                                                     static_cast<float*>(scratch));
}

}  // namespace rocmforge::gpu
