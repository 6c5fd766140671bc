// Token sampling on the GPU; only the chosen ids (and logprobs) go back to the host.
//
// The distribution, in this order (docs/gpu.md; the CPU sampler is the reference):
//   repetition penalty over the distinct recent tokens (l > 0 ? l / p : l * p);
//   greedy (temperature <= 0): argmax, lowest id on ties;
//   else s = l * (1 / temperature); candidates ordered by s descending, id ascending;
//   top-k keeps the first k; top-p keeps the shortest prefix whose probability
//   mass (over the top-k set) reaches top_p; min-p keeps exp(s - max) >= min_p;
//   u = SampleUniform(seed, step) picks the first candidate, in that order,
//   whose cumulative mass exceeds u * (mass of all kept candidates).
// logprob = log-softmax of the chosen token over the whole vocabulary after
// the penalty and temperature (temperature 1 for greedy rows).
//
// Every row is read by many blocks (a 128k row by one block took ~2 ms): a
// histogram of the row over bins below its maximum finds the few candidates
// that can decide the outcome (the top-k set, the top-p prefix, or the bin the
// draw falls in); only those are sorted, and the CPU sampler's steps run on
// them in double. Rows where that set would be too large (near-flat logits,
// large top-k) refine only the bins where a cut or the draw falls, by passes
// of one block over the row ("wide rows" below); where even that cannot split
// a range (thousands of equal values), radix selects over order-preserving
// 32-bit keys in one block (the "single block" section) decide. Plain greedy
// rows take LaunchSampleGreedy.
#include "engine/sampling/philox.h"
#include "kernels/gpu_api.h"
#include "kernels/launch_util.h"

namespace rocmforge::gpu {
namespace {

// ---- single block per row: radix selection over the whole row (the fallback).
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
  GridDependencyBegin();
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
  GridDependencyBegin();
  const int row = blockIdx.x;
  GreedyPartial p{-INFINITY, 0.0f, 0};
  for (int c = threadIdx.x; c < n_chunks; c += blockDim.x) {
    p = Merge(p, partials[static_cast<int64_t>(row) * n_chunks + c]);
  }
  p = BlockMerge(p);
  if (threadIdx.x == 0) {
    SampleRowResult* res = results + row;
    res->path = kSamplePathArgmax;
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

// ---- the many-blocks-per-row pipeline (every row that is not plain greedy).
// Four launches, each over all rows:
//   PrepKernel     (chunks x rows): s = penalised, sanitised logits x (1/T) into
//                  scratch; per chunk (max, sum of exp(s - max), lowest argmax).
//   HistKernel     (chunks x rows): a histogram (count, mass) of the row's
//                  candidates over bins of 1/32 logit below the row max, merged
//                  with global atomics; the row's last block scans it and picks
//                  the bins that can hold the outcome (RowState below).
//   CompactKernel  (chunks x rows): copies the candidates of those bins, at most
//                  kListCap, into a per-row list.
//   FinishKernel   (rows, one block each): sorts the list (value desc, id asc)
//                  and runs the CPU sampler's own steps on it in double.
// Rows whose outcome needs more than kListCap candidates (a very flat row, top-k
// beyond the cap) are refined in FinishKernel instead (PickRefined).
constexpr int kPassThreads = 256;
constexpr int kPerBlock = 2048;  // logits per block of the row passes
constexpr int kMaxChunks = 256;
constexpr int kBins = 2048;
constexpr float kBinsPerLogit = 32.0f;  // bin b holds m - s in [b/32, (b+1)/32); the last: the rest
constexpr int kListCap = 2 * kThreads;  // FinishKernel: two list entries per thread

int RowChunks(int vocab) {
  const int chunks = (vocab + kPerBlock - 1) / kPerBlock;
  return chunks < 1 ? 1 : (chunks > kMaxChunks ? kMaxChunks : chunks);
}

enum RowMode : int {
  kModeGreedy = 0,    // argmax (from the partials)
  kModeNothing = 1,   // no finite logit: token 0, as the CPU sampler
  kModeTop = 2,       // top-k / top-p: the list holds every candidate of bins [0, bin_hi]
  kModeDraw = 3,      // temperature (+ min-p) only: the list holds the bin the draw falls in
  kModeFallback = 4,  // too many candidates for the list: PickRefined (or the radix selects)
};

struct RowState {
  float m;  // max of s
  float z;  // sum of exp(s - m) over the row (float: the logprob)
  int argmax;
  int mode;
  int n_finite;   // candidates (finite s)
  int bin_lo, bin_hi;
  int count;      // list entries
  double total;   // kModeTop: mass of all candidates; kModeDraw: mass of the kept ones
  double above;   // kModeDraw: mass of the bins before bin_lo
  unsigned hist_done;  // HistKernel blocks finished (zeroed by PrepKernel)
  unsigned list_len;   // CompactKernel cursor (zeroed by PrepKernel)
};

struct RowHist {
  int count[kBins];
  double mass[kBins];
};

struct Pipeline {
  float* s;
  GreedyPartial* partials;  // kMaxChunks per row
  RowState* state;
  RowHist* hist;
  uint64_t* list;  // kListCap per row
};

__device__ __forceinline__ int Bin(float v, float m) {
  const float d = (m - v) * kBinsPerLogit;  // -inf gives +inf: the last bin
  return d < static_cast<float>(kBins - 1) ? static_cast<int>(d) : kBins - 1;
}

__device__ __forceinline__ bool DrawMode(const SampleRowParams& p) {
  return p.top_k <= 0 && p.top_p >= 1.0f;
}

// Which values are candidates of a row. kModeTop: every finite one (the filters
// run on the sorted list). kModeDraw: the kept ones, i.e. min-p as the CPU
// sampler applies it when it is the only filter: s >= m + log(min_p) (float)
// and exp(s - m) >= min_p (double).
struct CandidateTest {
  float m;
  bool min_p_on;
  float floor_f;
  double min_p;
  __device__ CandidateTest(const SampleRowParams& p, float m_) : m(m_) {
    min_p_on = DrawMode(p) && p.min_p > 0.0f;
    floor_f = min_p_on ? m + logf(p.min_p) : -INFINITY;
    min_p = p.min_p;
  }
  __device__ __forceinline__ bool operator()(float v) const {
    if (v == -INFINITY) return false;
    if (!min_p_on) return true;
    return v >= floor_f && exp(static_cast<double>(v) - static_cast<double>(m)) >= min_p;
  }
};

// Sort key: ascending order = value descending, then id ascending.
__device__ __forceinline__ uint64_t ListKey(float v, int id) {
  return (static_cast<uint64_t>(~Key(v)) << 32) | static_cast<uint32_t>(id);
}

// Block exclusive prefix sum (any block size up to kMaxBlock); `buf` holds
// blockDim.x values of shared memory. Starts and ends with a barrier.
template <typename T>
__device__ T BlockExclusiveScanT(T v, T* buf) {
  const int tid = static_cast<int>(threadIdx.x);
  __syncthreads();
  buf[tid] = v;
  __syncthreads();
  for (int off = 1; off < static_cast<int>(blockDim.x); off <<= 1) {
    const T add = tid >= off ? buf[tid - off] : T(0);
    __syncthreads();
    buf[tid] += add;
    __syncthreads();
  }
  const T r = buf[tid] - v;
  __syncthreads();
  return r;
}

// grid (chunks, rows).
__global__ void __launch_bounds__(kPassThreads)
    PrepKernel(const float* logits, int vocab, int chunk, const SampleRowParams* params,
               const int32_t* recent, Pipeline pl) {
  const int row = blockIdx.y;
  const SampleRowParams& p = params[row];
  const float* l = logits + static_cast<int64_t>(row) * vocab;
  float* s = pl.s + static_cast<int64_t>(row) * vocab;
  const int lo = blockIdx.x * chunk, hi = min(vocab, lo + chunk);
  const bool greedy = p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  const bool penalty = p.repetition_penalty != 1.0f && p.recent_count > 0;
  if (penalty) {  // the distinct recent tokens of this chunk, once each (as the CPU)
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      const float v = l[i];
      s[i] = isfinite(v) ? v : -INFINITY;
    }
    __syncthreads();
    const int32_t* rec = recent + p.recent_offset;
    for (int r = threadIdx.x; r < p.recent_count; r += blockDim.x) {
      const int tok = rec[r];
      bool skip = tok < lo || tok >= hi;
      for (int q = 0; q < r && !skip; ++q) skip = rec[q] == tok;
      if (!skip) {
        const float v = s[tok];
        s[tok] = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
      }
    }
    __syncthreads();
  }
  GreedyPartial part{-INFINITY, 0.0f, vocab};
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float v;
    if (penalty) {
      v = s[i];
    } else {
      v = l[i];
      v = isfinite(v) ? v : -INFINITY;
    }
    if (!greedy) v = v * inv_t;
    s[i] = v;
    if (v == -INFINITY) continue;
    if (v > part.m) {
      part.z = part.z * expf(part.m - v) + 1.0f;
      part.m = v;
      part.index = i;
    } else {
      part.z += expf(v - part.m);
    }
  }
  part = BlockMerge(part);
  if (threadIdx.x == 0) pl.partials[static_cast<int64_t>(row) * kMaxChunks + blockIdx.x] = part;
  if (blockIdx.x == 0) {  // clean the row's histogram and counters for the next kernels
    RowHist& h = pl.hist[row];
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
      h.count[b] = 0;
      h.mass[b] = 0.0;
    }
    if (threadIdx.x == 0) {
      pl.state[row].hist_done = 0;
      pl.state[row].list_len = 0;
    }
  }
}

// grid (chunks, rows).
__global__ void __launch_bounds__(kPassThreads)
    HistKernel(int vocab, int chunk, const SampleRowParams* params, Pipeline pl) {
  __shared__ int cnt[kBins];
  __shared__ double mass[kBins];
  __shared__ int iscan[kPassThreads];
  __shared__ double dscan[kPassThreads];
  __shared__ GreedyPartial row_part;
  __shared__ int flag, found_k, found_p, found_d, last_bin;
  const int row = blockIdx.y;
  const SampleRowParams& p = params[row];
  RowState& st = pl.state[row];
  // Every block merges the row's partials (a few dozen) for the max.
  GreedyPartial g{-INFINITY, 0.0f, vocab};
  for (int c = threadIdx.x; c < static_cast<int>(gridDim.x); c += blockDim.x) {
    g = Merge(g, pl.partials[static_cast<int64_t>(row) * kMaxChunks + c]);
  }
  g = BlockMerge(g);
  if (threadIdx.x == 0) row_part = g;
  __syncthreads();
  g = row_part;
  const float m = g.m;
  const bool greedy = p.temperature <= 0.0f;
  if (greedy || m == -INFINITY) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      st.m = m;
      st.z = g.z;
      st.argmax = g.index;
      st.mode = m == -INFINITY ? kModeNothing : kModeGreedy;
    }
    return;
  }
  const CandidateTest is_candidate(p, m);
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
    cnt[b] = 0;
    mass[b] = 0.0;
  }
  __syncthreads();
  const float* s = pl.s + static_cast<int64_t>(row) * vocab;
  const int lo = blockIdx.x * chunk, hi = min(vocab, lo + chunk);
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float v = s[i];
    if (!is_candidate(v)) continue;
    const int b = Bin(v, m);
    atomicAdd(&cnt[b], 1);
    atomicAdd(&mass[b], exp(static_cast<double>(v) - static_cast<double>(m)));
  }
  __syncthreads();
  RowHist& h = pl.hist[row];
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
    if (cnt[b] != 0) {
      atomicAdd(&h.count[b], cnt[b]);
      atomicAdd(&h.mass[b], mass[b]);
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) flag = atomicAdd(&st.hist_done, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!flag) return;
  __threadfence();

  // The row's last block: prefix sums over the bins (bin 0 = the largest values).
  constexpr int kPer = kBins / kPassThreads;
  const int b0 = threadIdx.x * kPer;
  int c_loc[kPer];
  double m_loc[kPer];
  int c_sum = 0;
  double m_sum = 0.0;
  const volatile int* hc = h.count;
  const volatile double* hm = h.mass;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    c_sum += hc[b0 + j];
    m_sum += hm[b0 + j];
    c_loc[j] = c_sum;
    m_loc[j] = m_sum;
  }
  const int c_before = BlockExclusiveScanT(c_sum, iscan);
  const double m_before = BlockExclusiveScanT(m_sum, dscan);
  // cnt / mass now hold inclusive prefix sums.
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    cnt[b0 + j] = c_before + c_loc[j];
    mass[b0 + j] = m_before + m_loc[j];
    // The row's histogram becomes its prefix sums (FinishKernel's refine path reads them).
    h.count[b0 + j] = cnt[b0 + j];
    h.mass[b0 + j] = mass[b0 + j];
  }
  if (threadIdx.x == 0) {
    found_k = found_p = found_d = kBins;
    last_bin = 0;
  }
  __syncthreads();
  const int n_finite = cnt[kBins - 1];
  const double z_all = mass[kBins - 1];
  const bool draw = DrawMode(p);
  const bool k_active = p.top_k > 0 && p.top_k < n_finite;
  const double p_target = static_cast<double>(p.top_p) * z_all * (1.0 + 1e-6);
  const double d_target = static_cast<double>(SampleUniform(p.seed, p.step)) * z_all;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int b = b0 + j;
    const int c_prev = b == 0 ? 0 : cnt[b - 1];
    const double m_prev = b == 0 ? 0.0 : mass[b - 1];
    if (k_active && cnt[b] >= p.top_k && c_prev < p.top_k) found_k = b;
    if (mass[b] >= p_target && !(m_prev >= p_target)) atomicMin(&found_p, b);
    if (mass[b] > d_target && !(m_prev > d_target)) atomicMin(&found_d, b);
    if (cnt[b] > c_prev) atomicMax(&last_bin, b);
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  st.m = m;
  st.z = g.z;
  st.argmax = g.index;
  st.n_finite = n_finite;
  st.total = z_all;
  st.above = 0.0;
  if (draw) {
    const int b = found_d < kBins ? found_d : last_bin;  // rounding past the end: the last bin
    st.bin_lo = st.bin_hi = b;
    st.above = b == 0 ? 0.0 : mass[b - 1];
    st.count = cnt[b] - (b == 0 ? 0 : cnt[b - 1]);
  } else {
    int t = kBins - 1;
    if (k_active) {
      t = found_k;  // the list must hold the whole top-k set: its mass is top-p's base
    } else {
      if (p.top_p < 1.0f) t = min(t, found_p);
      if (p.min_p > 0.0f) {  // exp(s - m) >= min_p needs m - s <= -log(min_p)
        t = min(t, static_cast<int>(fminf(-logf(p.min_p) * kBinsPerLogit, kBins - 2)) + 1);
      }
    }
    st.bin_lo = 0;
    st.bin_hi = t;
    st.count = cnt[t];
  }
  st.mode = st.count <= kListCap ? (draw ? kModeDraw : kModeTop) : kModeFallback;
}

// grid (chunks, rows).
__global__ void __launch_bounds__(kPassThreads)
    CompactKernel(int vocab, int chunk, const SampleRowParams* params, Pipeline pl) {
  __shared__ uint64_t local[kListCap];
  __shared__ int n_local;
  __shared__ unsigned base;
  const int row = blockIdx.y;
  const RowState& st = pl.state[row];
  const int mode = st.mode;
  if (mode != kModeTop && mode != kModeDraw) return;
  const CandidateTest is_candidate(params[row], st.m);
  const int bin_lo = st.bin_lo, bin_hi = st.bin_hi;
  if (threadIdx.x == 0) n_local = 0;
  __syncthreads();
  const float* s = pl.s + static_cast<int64_t>(row) * vocab;
  const int lo = blockIdx.x * chunk, hi = min(vocab, lo + chunk);
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float v = s[i];
    if (!is_candidate(v)) continue;
    const int b = Bin(v, st.m);
    if (b < bin_lo || b > bin_hi) continue;
    const int at = atomicAdd(&n_local, 1);  // < kListCap: the histogram counted these
    if (at < kListCap) local[at] = ListKey(v, i);
  }
  __syncthreads();
  const int n = min(n_local, kListCap);
  if (n == 0) return;
  // list_len may pass kListCap only if this pass disagreed with the histogram;
  // FinishKernel then takes the fallback, and nothing is written out of bounds.
  if (threadIdx.x == 0) base = atomicAdd(&pl.state[row].list_len, static_cast<unsigned>(n));
  __syncthreads();
  uint64_t* out = pl.list + static_cast<int64_t>(row) * kListCap;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    if (base + j < static_cast<unsigned>(kListCap)) out[base + j] = local[j];
  }
}

// The CPU sampler's top-k / top-p / min-p / draw on the whole candidate set,
// with the single-block radix selects (the path for rows the list cannot hold).
__device__ int PickSingleBlock(const float* s, int vocab, const SampleRowParams& p, float m,
                               Shared& sh) {
  Cut cut{0u, vocab};  // everything
  if (p.top_k > 0 && p.top_k < vocab) {
    cut = Select<true>(s, vocab, cut, m, static_cast<double>(p.top_k - 1), sh);
  }
  double zk = 0.0;
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
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (Kept(Key(s[i]), i, cut)) zc += expf(s[i] - m);
  }
  zc = BlockSumD(zc, sh);
  const double u = SampleUniform(p.seed, p.step);
  return Select<false>(s, vocab, cut, m, u * zc, sh).index;
}

// Smallest i over the block for which the calling thread passes `hit` (kNone if none).
constexpr int kNone = 1 << 30;
__device__ int BlockFirst(int i_or_none, int* slot) {
  __syncthreads();
  if (threadIdx.x == 0) *slot = kNone;
  __syncthreads();
  if (i_or_none != kNone) atomicMin(slot, i_or_none);
  __syncthreads();
  return *slot;
}

// Sorts keys[0, n) ascending in one block (bitonic over the next power of two;
// the padding holds ~0, which sorts last). Starts and ends with a barrier.
__device__ void BlockSortKeys(uint64_t* keys, int n) {
  int width = 1;
  while (width < n) width <<= 1;
  __syncthreads();
  for (int j = n + static_cast<int>(threadIdx.x); j < width; j += blockDim.x) keys[j] = ~0ull;
  __syncthreads();
  for (int k = 2; k <= width; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const int o = i ^ j;
        if (o > i) {
          const uint64_t a = keys[i], b = keys[o];
          if (((i & k) == 0) == (a > b)) {
            keys[i] = b;
            keys[o] = a;
          }
        }
      }
      __syncthreads();
    }
  }
}

// ---- wide rows (the outcome needs more than kListCap candidates): refinement.
// The outcome depends on the exact candidate order only where a cut (top-k,
// top-p) or the draw falls; candidates before that point count as whole sums.
// Each such point is located by one block: HistKernel's histogram (prefix sums
// in global memory) names the bin; while that bin holds more than kListCap
// candidates, a pass over the row splits its range into kSubBins sub-ranges
// (count and double mass each) and keeps the one the point falls in; the
// final range's candidates are copied to the list, sorted (value desc, id asc)
// and scanned in double, as the list path does. Ranges are intervals of the
// depth key, the bits of d = (m - s) * 32 (the float Bin() truncates): d does
// not increase with s, so a range is a contiguous run of the candidate order,
// and a level-1 bin b is exactly the keys [bits(b), bits(b + 1)). Sub-ranges
// partition a range, so no tie of value straddles two of them. A range of one
// key that still holds more than kListCap candidates (thousands of equal
// values) cannot be split: such a row takes the single-block radix path.
constexpr int kSubBins = kThreads;  // one sub-range per thread

__device__ __forceinline__ uint32_t DepthKey(float v, float m) {
  return __float_as_uint((m - v) * kBinsPerLogit);
}

// A point in the candidate order: the first candidate whose cumulative weight
// crosses `target`, among the first `limit` candidates.
struct Query {
  bool by_count;  // weight 1 (the k-th candidate); else exp(s - m)
  bool strict;    // cum > target (the draw); else cum >= target (top-k, top-p)
  double target;
  int limit;
};

constexpr int kFoundOk = 0, kFoundPastLimit = 1, kFoundFailed = 2;
struct Found {
  int status;  // kFoundPastLimit: the point lies at or beyond `limit`
  int index;   // position in the candidate order
  int id;
  double cum;  // mass of the candidates [0, index]
};

struct RefineShared {
  int cnt[kSubBins];
  double mass[kSubBins];
  int first, last, n_list;
  int pick_c;
  double pick_m;
  Found found;
};

__device__ __forceinline__ bool Crosses(double cum, const Query& q) {
  return q.strict ? cum > q.target : cum >= q.target;
}

// f(s[i], i) for every i of the row, by the block's threads. `batched`
// (SampleConfig::batched_row_passes): kRowBatch loads per thread issued before
// any of them is used; one block reads the whole row, so otherwise the L2
// latency of each load can sit between the shared-memory atomics of f.
constexpr int kRowBatch = 8;
template <typename F>
__device__ __forceinline__ void RowPass(const float* s, int vocab, bool batched, F&& f) {
  if (batched) {
    const int step = static_cast<int>(blockDim.x);
    for (int base = static_cast<int>(threadIdx.x); base < vocab; base += kRowBatch * step) {
      float v[kRowBatch];
#pragma unroll
      for (int u = 0; u < kRowBatch; ++u) {
        const int i = base + u * step;
        v[u] = i < vocab ? s[i] : -INFINITY;
      }
#pragma unroll
      for (int u = 0; u < kRowBatch; ++u) {
        const int i = base + u * step;
        if (i < vocab) f(v[u], i);
      }
    }
  } else {
#pragma unroll 4
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) f(s[i], i);
  }
}

// blockDim.x == kSubBins. `h` holds HistKernel's inclusive prefix sums.
__device__ Found Locate(const float* s, int vocab, float m, const CandidateTest& is_candidate,
                        const RowHist& h, const Query& q, RefineShared& rs, uint64_t* keys,
                        double* dscan, int* iscan, bool batched) {
  const int tid = static_cast<int>(threadIdx.x);
  Found fail{kFoundFailed, 0, 0, 0.0};
  Found past{kFoundPastLimit, 0, 0, 0.0};
  // Level 1: the first non-empty bin whose prefix crosses the target; none
  // (rounding past the end): the last non-empty bin.
  __syncthreads();
  if (tid == 0) {
    rs.first = kBins;
    rs.last = -1;
  }
  __syncthreads();
  for (int b = tid; b < kBins; b += blockDim.x) {
    const int c = h.count[b], c_prev = b == 0 ? 0 : h.count[b - 1];
    if (c > c_prev) {
      atomicMax(&rs.last, b);
      if (Crosses(q.by_count ? static_cast<double>(c) : h.mass[b], q)) atomicMin(&rs.first, b);
    }
  }
  __syncthreads();
  const int b = rs.first < kBins ? rs.first : rs.last;
  if (b < 0) return fail;
  int c_above = b == 0 ? 0 : h.count[b - 1];
  double m_above = b == 0 ? 0.0 : h.mass[b - 1];
  int n = h.count[b] - c_above;
  uint32_t lo = __float_as_uint(static_cast<float>(b));
  uint32_t hi = b == kBins - 1 ? 0x7f800001u : __float_as_uint(static_cast<float>(b + 1));  // + inf
  if (c_above >= q.limit) return past;
  while (n > kListCap) {
    if (hi - lo <= 1) return fail;  // one key: equal values the list cannot hold
    const uint64_t width = hi - lo;
    rs.cnt[tid] = 0;
    rs.mass[tid] = 0.0;
    __syncthreads();
    RowPass(s, vocab, batched, [&](float v, int) {
      const uint32_t key = DepthKey(v, m) - lo;  // wraps for keys below lo
      if (key < width && is_candidate(v)) {
        const int j = static_cast<int>(static_cast<uint64_t>(key) * kSubBins / width);
        atomicAdd(&rs.cnt[j], 1);
        atomicAdd(&rs.mass[j], exp(static_cast<double>(v) - static_cast<double>(m)));
      }
    });
    __syncthreads();
    const int c = rs.cnt[tid];
    const double w = rs.mass[tid];
    const int c_before = BlockExclusiveScanT(c, iscan);
    const double m_before = BlockExclusiveScanT(w, dscan);
    if (tid == 0) {
      rs.first = kSubBins;
      rs.last = -1;
    }
    __syncthreads();
    if (c > 0) {
      atomicMax(&rs.last, tid);
      const double cum = q.by_count ? static_cast<double>(c_above + c_before + c) : m_above + m_before + w;
      if (Crosses(cum, q)) atomicMin(&rs.first, tid);
    }
    __syncthreads();
    const int j = rs.first < kSubBins ? rs.first : rs.last;
    if (j < 0) return fail;  // the histogram promised candidates here
    if (tid == j) {
      rs.pick_c = c_before;
      rs.pick_m = m_before;
      rs.n_list = c;
    }
    __syncthreads();
    c_above += rs.pick_c;
    m_above += rs.pick_m;
    n = rs.n_list;
    // Sub-range j = keys lo + [ceil(j * width / S), ceil((j + 1) * width / S)).
    const uint64_t uj = static_cast<uint64_t>(j);
    hi = lo + static_cast<uint32_t>(((uj + 1) * width + kSubBins - 1) / kSubBins);
    lo = lo + static_cast<uint32_t>((uj * width + kSubBins - 1) / kSubBins);
    __syncthreads();
    if (c_above >= q.limit) return past;
  }
  // The range fits the list: copy, sort, scan.
  if (tid == 0) rs.n_list = 0;
  __syncthreads();
  {
    const uint32_t width = hi - lo;
    RowPass(s, vocab, batched, [&](float v, int i) {
      const uint32_t key = DepthKey(v, m) - lo;
      if (key < width && is_candidate(v)) {
        const int at = atomicAdd(&rs.n_list, 1);
        if (at < kListCap) keys[at] = ListKey(v, i);
      }
    });
  }
  __syncthreads();
  if (rs.n_list != n) return fail;  // the pass disagrees with the histogram
  BlockSortKeys(keys, n);
  const int i0 = 2 * tid;
  int id[2];
  double w[2], cum[2];
  for (int j = 0; j < 2; ++j) {
    const int i = i0 + j;
    id[j] = i < n ? static_cast<int>(static_cast<uint32_t>(keys[i])) : 0;
    w[j] = i < n ? exp(static_cast<double>(s[id[j]]) - static_cast<double>(m)) : 0.0;
  }
  const double before = BlockExclusiveScanT(w[0] + w[1], dscan) + m_above;
  cum[0] = before + w[0];
  cum[1] = cum[0] + w[1];
  const int lim = min(n, q.limit - c_above);  // >= 1
  int first = kNone;
  for (int j = 1; j >= 0; --j) {
    const int i = i0 + j;
    if (i < lim && Crosses(q.by_count ? static_cast<double>(c_above + i + 1) : cum[j], q)) first = i;
  }
  first = BlockFirst(first, &rs.first);
  const int at = first != kNone ? first : lim - 1;  // rounding: the last one that counts
  if (tid == at / 2) rs.found = Found{kFoundOk, c_above + at, id[at % 2], cum[at % 2]};
  __syncthreads();
  const Found f = rs.found;
  __syncthreads();
  return f;
}

// The last candidate in order (max ListKey) among those with exp(s - m) >=
// min_p when `min_p_on`, else among all; with their count and mass when
// `min_p_on`. Bins wholly above the min-p bound count through the histogram;
// only the bins near it are tested one value at a time.
struct TailSet {
  int count;
  double mass;
  int last_id;
};
__device__ TailSet LastCandidates(const float* s, int vocab, float m, const CandidateTest& is_candidate,
                                  bool min_p_on, float min_p, const RowHist& h, Shared& sh,
                                  unsigned long long* max_key, bool batched) {
  int b_lo = kBins, b_hi = kBins - 1;  // bins [b_lo, b_hi] are tested value by value
  if (min_p_on) {
    const int b0 = static_cast<int>(fminf(-logf(min_p) * kBinsPerLogit, static_cast<float>(kBins - 1)));
    b_lo = max(0, b0 - 1);
    b_hi = min(kBins - 1, b0 + 1);
  }
  const double mp = min_p;
  __syncthreads();
  if (threadIdx.x == 0) *max_key = 0ull;
  __syncthreads();
  int cnt = 0;
  double mass = 0.0;
  unsigned long long best = 0ull;
  RowPass(s, vocab, batched, [&](float v, int i) {
    if (!is_candidate(v)) return;
    const int b = Bin(v, m);
    if (b > b_hi) return;
    if (b >= b_lo) {
      const double w = exp(static_cast<double>(v) - static_cast<double>(m));
      if (min_p_on && !(w >= mp)) return;
      ++cnt;
      mass += w;
    }
    const unsigned long long k = ListKey(v, i);
    best = k > best ? k : best;
  });
  atomicMax(max_key, best);
  const int above = b_lo == 0 || b_lo >= kBins ? 0 : h.count[b_lo - 1];
  const double above_m = b_lo == 0 || b_lo >= kBins ? 0.0 : h.mass[b_lo - 1];
  const double total_m = BlockSumD(mass, sh) + above_m;
  const double total_c = BlockSumD(static_cast<double>(cnt), sh) + above;
  __syncthreads();
  const unsigned long long k = *max_key;
  __syncthreads();
  return TailSet{static_cast<int>(total_c), total_m, static_cast<int>(static_cast<uint32_t>(k))};
}

// The CPU sampler's top-k, top-p, min-p and draw for a row the list cannot
// hold; -1 where a range of equal values defeats the refinement.
__device__ int PickRefined(const float* s, int vocab, const SampleRowParams& p, const RowState& st,
                           const RowHist& h, RefineShared& rs, uint64_t* keys, double* dscan, Shared& sh,
                           unsigned long long* max_key, bool batched) {
  const float m = st.m;
  const CandidateTest is_candidate(p, m);
  int limit = st.n_finite;  // candidates kept so far: a prefix of the order
  double kept = st.total;   // their mass
  int last_id = -1;         // the last of them (-1: not known yet)
  if (!DrawMode(p)) {
    if (p.top_k > 0 && p.top_k < st.n_finite) {
      const Found f = Locate(s, vocab, m, is_candidate, h, Query{true, false, static_cast<double>(p.top_k), limit},
                             rs, keys, dscan, sh.scan, batched);
      if (f.status != kFoundOk) return -1;
      limit = p.top_k;
      kept = f.cum;
      last_id = f.id;
    }
    if (p.top_p < 1.0f) {
      const Found f = Locate(s, vocab, m, is_candidate, h,
                             Query{false, false, static_cast<double>(p.top_p) * kept, limit}, rs, keys, dscan,
                             sh.scan, batched);
      if (f.status == kFoundFailed) return -1;
      if (f.status == kFoundOk) {
        limit = f.index + 1;
        kept = f.cum;
        last_id = f.id;
      }
    }
    if (p.min_p > 0.0f) {  // keeps the prefix with exp(s - m) >= min_p (the first always)
      const TailSet t = LastCandidates(s, vocab, m, is_candidate, true, p.min_p, h, sh, max_key, batched);
      if (t.count < limit) {
        limit = max(t.count, 1);
        kept = t.mass;
        last_id = t.last_id;
      }
    }
  }
  const double u = SampleUniform(p.seed, p.step);
  const Found f =
      Locate(s, vocab, m, is_candidate, h, Query{false, true, u * kept, limit}, rs, keys, dscan, sh.scan, batched);
  if (f.status == kFoundOk) return f.id;
  if (f.status == kFoundFailed) return -1;
  // Rounding put the draw past the kept set: its last candidate, as the CPU.
  if (last_id < 0) {
    last_id = LastCandidates(s, vocab, m, is_candidate, false, 0.0f, h, sh, max_key, batched).last_id;
  }
  return last_id;
}

// grid rows, kThreads each. kBatched: SampleConfig::batched_row_passes (its
// own instance, so the other keeps the code that was measured).
template <bool kBatched>
__global__ void __launch_bounds__(kThreads, 1)
    FinishKernel(int vocab, const SampleRowParams* params, Pipeline pl, SampleRowResult* results,
                 bool refine) {
  __shared__ Shared sh;
  __shared__ uint64_t keys[kListCap];
  __shared__ double dscan[kThreads];
  __shared__ int slot;
  __shared__ double total_at;
  __shared__ RefineShared rs;
  __shared__ unsigned long long max_key;
  const int row = blockIdx.x;
  const SampleRowParams& p = params[row];
  const RowState& st = pl.state[row];
  const float* s = pl.s + static_cast<int64_t>(row) * vocab;
  const float m = st.m;
  const int mode = st.mode;
  int pick = 0;
  int path = kSamplePathArgmax;
  // A row the list cannot hold: refined (default), else (or where refinement
  // fails on a range of equal values) the single-block radix selects.
  auto pick_wide = [&]() {
    int r = refine ? PickRefined(s, vocab, p, st, pl.hist[row], rs, keys, dscan, sh, &max_key, kBatched) : -1;
    path = r >= 0 ? kSamplePathRefine : kSamplePathSingleBlock;
    if (r < 0) r = PickSingleBlock(s, vocab, p, m, sh);
    return r;
  };
  // The list must hold exactly the candidates the histogram counted.
  const bool list_ok = (mode == kModeTop || mode == kModeDraw) && st.list_len == static_cast<unsigned>(st.count);
  if (mode == kModeGreedy) {
    pick = st.argmax;
  } else if (list_ok) {
    const int n_list = st.count;
    const uint64_t* list = pl.list + static_cast<int64_t>(row) * kListCap;
    for (int j = threadIdx.x; j < n_list; j += blockDim.x) keys[j] = list[j];
    BlockSortKeys(keys, n_list);  // ascending keys: value desc, id asc
    // Two consecutive candidates per thread: weights and inclusive cumulative mass.
    const int i0 = 2 * static_cast<int>(threadIdx.x);
    int id[2];
    double w[2], cum[2];
    for (int j = 0; j < 2; ++j) {
      const int i = i0 + j;
      id[j] = i < n_list ? static_cast<int>(static_cast<uint32_t>(keys[i])) : 0;
      w[j] = i < n_list ? exp(static_cast<double>(s[id[j]]) - static_cast<double>(m)) : 0.0;
    }
    const double before = BlockExclusiveScanT(w[0] + w[1], dscan) + st.above;
    cum[0] = before + w[0];
    cum[1] = cum[0] + w[1];
    int n = n_list;
    bool fallback = false;
    if (mode == kModeTop) {
      const bool k_active = p.top_k > 0 && p.top_k < st.n_finite;
      if (k_active) n = p.top_k;  // <= n_list: the list holds the top-k set
      if (p.top_p < 1.0f) {
        double total = st.total;  // every candidate's mass (no top-k)
        if (k_active) {
          if (static_cast<int>(threadIdx.x) == (n - 1) / 2) total_at = cum[(n - 1) % 2];
          __syncthreads();
          total = total_at;
        }
        const double target = static_cast<double>(p.top_p) * total;
        int first = kNone;
        for (int j = 1; j >= 0; --j) {
          if (i0 + j < n && cum[j] >= target) first = i0 + j;
        }
        first = BlockFirst(first, &slot);
        if (first != kNone) {
          n = first + 1;
        } else if (n_list < st.n_finite && !k_active) {
          fallback = true;  // the prefix would reach beyond the list: rounding, or a bad bound
        }
      }
      if (p.min_p > 0.0f && !fallback) {
        const double floor = p.min_p * exp(static_cast<double>(s[static_cast<uint32_t>(keys[0])]) - m);
        int first = kNone;
        for (int j = 1; j >= 0; --j) {
          if (i0 + j >= 1 && i0 + j < n && w[j] < floor) first = i0 + j;
        }
        first = BlockFirst(first, &slot);
        if (first != kNone) n = first;
      }
      if (!fallback) {  // kept mass = cumulative mass of the last kept candidate
        if (static_cast<int>(threadIdx.x) == (n - 1) / 2) total_at = cum[(n - 1) % 2];
        __syncthreads();
      }
    } else {
      if (threadIdx.x == 0) total_at = st.total;
      __syncthreads();
    }
    if (fallback) {
      pick = pick_wide();
    } else {
      path = kSamplePathList;
      const double target = static_cast<double>(SampleUniform(p.seed, p.step)) * total_at;
      int first = kNone;
      for (int j = 1; j >= 0; --j) {
        if (i0 + j < n && cum[j] > target) first = i0 + j;
      }
      first = BlockFirst(first, &slot);
      const int at = first != kNone ? first : n - 1;  // rounding: the last kept candidate
      pick = static_cast<int>(static_cast<uint32_t>(keys[at]));
    }
  } else if (mode != kModeNothing) {  // kModeFallback, or a list that went wrong
    pick = pick_wide();
  }
  // kModeNothing: token 0 (the CPU sampler's answer).
  const bool nothing = mode == kModeNothing;
  const float log_z = nothing ? 0.0f : logf(st.z);
  SampleRowResult* res = results + row;
  if (threadIdx.x == 0) {
    res->token = pick;
    res->path = path;
    // Nothing finite: -inf, as the CPU sampler (its log-sum-exp is 0 then).
    res->logprob = nothing ? -INFINITY : s[pick] - m - log_z;
  }
  const int n_top = min(min(p.n_top_logprobs, kMaxTopLogprobs), vocab);  // as the CPU: at most vocab
  __shared__ int32_t chosen[kMaxTopLogprobs];
  for (int k = 0; k < n_top; ++k) {
    const int id = BlockArgMax(s, vocab, chosen, k, sh);
    if (threadIdx.x == 0) {
      chosen[k] = id;
      res->top_ids[k] = id;
      res->top_logprobs[k] = nothing ? -INFINITY : s[id] - m - log_z;
    }
    __syncthreads();
  }
}

// Scratch layout of the pipeline (each part 256-byte aligned).
struct Layout {
  size_t s, partials, state, hist, list, total;
};
size_t Align(size_t x) { return (x + 255) / 256 * 256; }
Layout PipelineLayout(int n_rows, int vocab) {
  const size_t rows = static_cast<size_t>(n_rows);
  Layout l;
  l.s = 0;
  l.partials = Align(rows * static_cast<size_t>(vocab) * sizeof(float));
  l.state = l.partials + Align(rows * kMaxChunks * sizeof(GreedyPartial));
  l.hist = l.state + Align(rows * sizeof(RowState));
  l.list = l.hist + Align(rows * sizeof(RowHist));
  l.total = l.list + rows * kListCap * sizeof(uint64_t);
  return l;
}

SampleConfig g_sample_config;
}  // namespace

void SetSampleConfig(const SampleConfig& c) { g_sample_config = c; }
SampleConfig GetSampleConfig() { return g_sample_config; }

size_t SampleScratchBytes(int n_rows, int vocab) {
  const size_t full = PipelineLayout(n_rows, vocab).total;
  const size_t greedy = static_cast<size_t>(n_rows) * static_cast<size_t>(GreedyChunks(vocab)) *
                        sizeof(GreedyPartial);
  return full > greedy ? full : greedy;
}

void LaunchSampleGreedy(const float* logits, int n_rows, int vocab, SampleRowResult* results,
                        void* scratch, Stream s) {
  if (n_rows == 0 || vocab <= 0) return;
  const int chunks = GreedyChunks(vocab);
  const int chunk = (vocab + chunks - 1) / chunks;
  auto* partials = static_cast<GreedyPartial*>(scratch);
  LaunchKernel(GreedyPartialKernel, dim3(chunks, n_rows), kGreedyThreads, 0, s, logits, vocab, chunk,
               partials);
  LaunchKernel(GreedyFinishKernel, n_rows, kGreedyThreads, 0, s, partials, chunks, results);
}

void LaunchSample(const float* logits, int n_rows, int vocab, const SampleRowParams* params,
                  const int32_t* recent, SampleRowResult* results, void* scratch, Stream s) {
  if (n_rows == 0 || vocab <= 0) return;
  const Layout l = PipelineLayout(n_rows, vocab);
  auto* base = static_cast<uint8_t*>(scratch);
  Pipeline pl;
  pl.s = reinterpret_cast<float*>(base + l.s);
  pl.partials = reinterpret_cast<GreedyPartial*>(base + l.partials);
  pl.state = reinterpret_cast<RowState*>(base + l.state);
  pl.hist = reinterpret_cast<RowHist*>(base + l.hist);
  pl.list = reinterpret_cast<uint64_t*>(base + l.list);
  const int chunks = RowChunks(vocab);
  const int chunk = (vocab + chunks - 1) / chunks;
  const dim3 grid(chunks, n_rows);
  const hipStream_t st = ToStream(s);
  PrepKernel<<<grid, kPassThreads, 0, st>>>(logits, vocab, chunk, params, recent, pl);
  HistKernel<<<grid, kPassThreads, 0, st>>>(vocab, chunk, params, pl);
  CompactKernel<<<grid, kPassThreads, 0, st>>>(vocab, chunk, params, pl);
  if (g_sample_config.batched_row_passes) {
    FinishKernel<true><<<n_rows, kThreads, 0, st>>>(vocab, params, pl, results, g_sample_config.refine_wide_rows);
  } else {
    FinishKernel<false><<<n_rows, kThreads, 0, st>>>(vocab, params, pl, results, g_sample_config.refine_wide_rows);
  }
}

}  // namespace rocmforge::gpu
