// The op interface the forward pass is written against, once, for every device.
//
// Contract:
//  * Every float* / void* argument is memory of this backend (host memory for the
//    CPU backend, device memory for the GPU one), obtained from Alloc() or
//    LoadWeight(). Activations are float32, row-major, [n_tokens][dim].
//  * Ops are enqueued in order on the backend's one stream; they may run
//    asynchronously. Download() and Sample() synchronise as needed.
//  * BeginStep() makes a StepBatch's metadata (tokens, positions, KV slots,
//    block tables, logit rows) current; Embed, Rope, StoreKv, Attention and
//    GatherRows read it from there, so the GPU uploads it once per step.
//  * Errors in setup (memory, uploads) are Status; ops themselves do not fail
//    on valid shapes (shapes are checked by the model at load time).
// The CPU backend is the reference: every GPU op is tested against it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend/memory_usage.h"
#include "engine/backend/step_batch.h"
#include "engine/gguf/gguf_file.h"
#include "engine/sampling/sampling_params.h"

namespace rocmforge {

enum class RopeStyle {
  kNorm,  // GGUF 'llama' order: rotate adjacent pairs (x0,x1),(x2,x3),...
  kNeox,  // NEOX order: rotate (x[i], x[i + rot_dim/2])
};

// A weight matrix (or vector) resident in the backend. rows x cols, each row
// RowBytes(type, cols) bytes, quantized weights stay quantized.
struct Weight {
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;  // inner dimension (K)
  int64_t rows = 1;  // outer dimension (N)
  const void* data = nullptr;
};

struct KvCacheShape {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // tokens per block
  int32_t num_blocks = 0;
};

// One row to sample from (one sequence that produces a token this step).
struct SampleRequest {
  SamplingParams params;
  uint64_t step = 0;                 // generated-token index: Philox counter
  std::vector<int32_t> recent;       // tokens for the repetition penalty
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0.0f;              // log-softmax of the chosen token (after temperature)
  std::vector<std::pair<int32_t, float>> top_logprobs;  // when params.logprobs > 0
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "hip", "cuda"
  virtual bool is_gpu() const = 0;

  // ---- memory ----------------------------------------------------------
  virtual absl::StatusOr<void*> Alloc(size_t bytes) = 0;
  virtual void Free(void* p) = 0;
  virtual absl::Status Upload(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status Download(void* dst, const void* src, size_t bytes) = 0;
  // Memory still available for the KV pool (device free memory, or a share of
  // host memory for the CPU).
  virtual size_t AvailableMemoryBytes() const = 0;
  // What the device reports in use and in total (the GPU's memory; on the CPU,
  // this process's resident set and the host's RAM). Safe to call from any
  // thread, concurrently with steps (metrics scrapes call it).
  virtual MemoryUsage DeviceMemoryUsage() const;
  // Step sizes in tokens, ascending, at which a step's time steps up: a step of
  // n tokens (n <= the last size) takes about as long as one of the smallest
  // size >= n (the GPU's GEMM token tiles). Empty where time grows smoothly
  // with n (the CPU). The scheduler fills steps up to these sizes.
  virtual std::vector<int32_t> StepTokenSizes() const;
  // The prefill tokens a step that carries decodes takes by default (the
  // worker's --max-prefill-with-decodes when not given; 0 = no cap beyond the
  // step budget): every decoding stream waits for the whole step, so the cap
  // trades inter-token latency against prefill throughput, which depends on
  // how a step's time grows with its tokens. 64 here (the CPU). Read once,
  // when the engine starts (after UseSpareMemory).
  virtual int32_t DefaultPrefillCapWithDecodes() const;

  // Makes a GGUF tensor resident (the CPU returns a view into the mapping; the
  // GPU copies it once). Unimplemented for types the backend cannot compute.
  virtual absl::StatusOr<Weight> LoadWeight(const gguf::TensorInfo& t) = 0;

  // Allocates the paged KV pool. K and V of one token in one layer are
  // n_kv_heads * head_dim values; storage precision is the backend's choice
  // (the CPU keeps f32, the GPU f16).
  virtual absl::Status InitKvCache(const KvCacheShape& shape) = 0;
  virtual const KvCacheShape& kv_shape() const = 0;
  // Called once after InitKvCache with the memory the KV pool left unused
  // (what AvailableMemoryBytes() reports then). A backend may keep caches there
  // that make steps faster without changing their results, never more than
  // `spare_bytes`. Returns the bytes it will use (0: none; the default).
  virtual size_t UseSpareMemory(size_t spare_bytes);

  // ---- per step --------------------------------------------------------
  virtual absl::Status BeginStep(const StepBatch& batch) = 0;

  // out[n][table.cols] = table row of each step token.
  virtual void Embed(const Weight& table, float* out) = 0;
  // out = x / rms(x) * w, per row of `dim`. out may alias x.
  virtual void RmsNorm(const float* x, const Weight& w, float* out, int n, int dim, float eps) = 0;
  // x += residual; out = RmsNorm(x). Default: the two ops; backends may fuse.
  virtual void AddRmsNorm(float* x, const float* residual, const Weight& w, float* out, int n,
                          int dim, float eps);
  // y[n][w.rows] = x[n][w.cols] . W^T (quantized W used in place).
  virtual void MatMul(const Weight& w, const float* x, float* y, int n) = 0;
  // y[i][:] += bias for each of n rows of bias.cols values.
  virtual void AddBias(float* y, const Weight& bias, int n) = 0;
  // Rotary embedding in place on x[n][n_heads * head_dim] at the step's positions;
  // only the first rot_dim dims of each head rotate.
  virtual void Rope(float* x, int n, int n_heads, int head_dim, int rot_dim, float freq_base,
                    RopeStyle style) = 0;
  // Writes k, v ([n][n_kv_heads*head_dim]) of layer `layer` into the step's slots.
  virtual void StoreKv(int layer, const float* k, const float* v) = 0;
  // Causal attention of q ([n][n_heads*head_dim]) over each sequence's cached
  // K/V (read through its block table), GQA/MQA by head grouping
  // (q head h uses kv head h / (n_heads / n_kv_heads)). out: [n][n_heads*head_dim].
  virtual void Attention(int layer, const float* q, float* out, int n_heads, float scale) = 0;
  // out[i] = silu(gate[i]) * up[i] for i < n.
  virtual void SwiGLU(const float* gate, const float* up, float* out, int64_t n) = 0;
  // x[i] += y[i].
  virtual void Add(float* x, const float* y, int64_t n) = 0;
  // out[r][:] = x[logit_rows[r]][:] for the step's logit rows.
  virtual void GatherRows(const float* x, float* out, int dim) = 0;
  // Picks one token per row of logits ([n_rows][vocab], backend memory) and
  // returns only the choices (and logprobs) to the host.
  virtual absl::Status Sample(const float* logits, int n_rows, int vocab,
                              const SampleRequest* requests, SampleResult* results) = 0;
  // Waits for all enqueued work; reports asynchronous device errors.
  virtual absl::Status Synchronize() = 0;
};

}  // namespace rocmforge
