// The GPU backend: every op of backend.h as a kernel of kernels/ (HIP, or the
// same sources built as CUDA), on one stream of one device.
//
// Memory: weights are copied to the device once at LoadWeight and stay
// quantized; the KV cache is f16, one K and one V array per layer, each
// [num_blocks * block_size][n_kv_heads * head_dim]. BeginStep uploads the
// step's metadata (tokens, positions, slots, attention tables, logit rows) in
// one copy; ops then run without host round trips. Sample() returns only the
// chosen ids and logprobs.
//
// Graphs: BeginGraphCapture / EndGraphCapture record the ops enqueued in
// between (e.g. a whole decode step, whose metadata lives at fixed device
// addresses) and ReplayGraph re-launches them in one call.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/gpu/launch_list.h"
#include "kernels/gpu_api.h"
#include "kernels/act_quant_launch.h"

namespace rocmforge {

// [a, a + na) and [b, b + nb) share memory (the fusions' aliasing checks).
inline bool Overlap(const float* a, int64_t na, const float* b, int64_t nb) {
  return a < b + nb && b < a + na;
}

class GpuBackend final : public Backend {
 public:
  ~GpuBackend() override;
  // Picks `device` and creates the stream. Unavailable when there is no device.
  static absl::StatusOr<std::unique_ptr<GpuBackend>> Create(int device);

  std::string_view name() const override { return gpu::RuntimeName(); }
  bool is_gpu() const override { return true; }
  const std::string& device_name() const { return device_name_; }

  absl::StatusOr<void*> Alloc(size_t bytes) override;
  void Free(void* p) override;
  absl::Status Upload(void* dst, const void* src, size_t bytes) override;
  absl::Status Download(void* dst, const void* src, size_t bytes) override;
  size_t AvailableMemoryBytes() const override;
  // The device's used / total memory as the runtime reports it (all processes).
  // Callable from any thread: it selects this backend's device first (the
  // current device is per host thread) and touches no backend state.
  MemoryUsage DeviceMemoryUsage() const override;
  std::vector<int32_t> StepTokenSizes() const override;
  int32_t DefaultPrefillCapWithDecodes() const override;
  absl::StatusOr<Weight> LoadWeight(const gguf::TensorInfo& t) override;
  absl::Status InitKvCache(const KvCacheShape& shape) override;
  const KvCacheShape& kv_shape() const override { return kv_; }

  absl::Status BeginStep(const StepBatch& batch) override;
  void Embed(const Weight& table, float* out) override;
  void RmsNorm(const float* x, const Weight& w, float* out, int n, int dim, float eps) override;
  void AddRmsNorm(float* x, const float* residual, const Weight& w, float* out, int n, int dim,
                  float eps) override;
  void MatMul(const Weight& w, const float* x, float* y, int n) override;
  void AddBias(float* y, const Weight& bias, int n) override;
  void Rope(float* x, int n, int n_heads, int head_dim, int rot_dim, float freq_base,
            RopeStyle style) override;
  void StoreKv(int layer, const float* k, const float* v) override;
  void Attention(int layer, const float* q, float* out, int n_heads, float scale) override;
  void SwiGLU(const float* gate, const float* up, float* out, int64_t n) override;
  void Add(float* x, const float* y, int64_t n) override;
  void GatherRows(const float* x, float* out, int dim) override;
  absl::Status Sample(const float* logits, int n_rows, int vocab, const SampleRequest* requests,
                      SampleResult* results) override;
  absl::Status Synchronize() override;

  // Device pointer to K (or V) row `slot` of `layer` (f16), for tests.
  const uint16_t* KCache(int layer) const { return k_cache_[layer]; }
  const uint16_t* VCache(int layer) const { return v_cache_[layer]; }
  gpu::Stream stream() const { return stream_; }

  // Graph capture of the ops enqueued between Begin and End; replay re-runs them
  // with whatever the fixed device buffers hold then.
  absl::Status BeginGraphCapture();
  absl::Status EndGraphCapture();
  absl::Status ReplayGraph();
  // Automatic graphs (on by default): the ops of a step of at most
  // graph_max_tokens tokens are deferred and, at the step's first synchronising
  // call, launched as one graph, captured the first time their exact sequence
  // (ops and arguments) is seen and replayed after that.
  void SetAutoGraphs(bool on) { auto_graphs_ = on; }
  // Ops a graph step records before launching them as its first segment
  // (MaybeLaunchFirstSegment); 0: the whole step is one graph. The default is
  // about two Llama layers (~11 ops a layer at batch 1): their ~0.15 ms on the
  // device covers recording the rest of an 8B step (30-80 us). H100, 08:14
  // UTC, tg128 Q4_K_M alternating: 0 385.0 / 386.2, 48 388.5 / 388.8, 24
  // 390.0 / 390.1 tok/s; Q8_0 294.0 / 294.2, 296.1 / 294.9, 296.3 / 295.0.
  static constexpr int kFirstSegmentOps = 24;
  void SetFirstSegmentOps(int n) { first_segment_ops_ = n; }
  int first_segment_ops() const { return first_segment_ops_; }
  // The largest step (tokens) that runs as an automatic graph (benchmarks);
  // default kGraphMaxTokens.
  void SetGraphMaxTokens(int n) { graph_max_tokens_ = n; }
  // Decode-sized steps (up to 8 tokens). Larger batched decode steps replay
  // ~0.1-0.2 ms faster on their own (H100, 2026-11-26 15:26 UTC, bench_gpu_decode
  // batch: 9 / 16 / 32 sequences 3.78 / 4.08 / 5.06 ms against 3.99 / 4.26 /
  // 5.15 launched), but each step size and 256-key attention bucket is its own
  // graph, and in the worker (N = 32: sizes 9..32 x a few buckets) the
  // captures cost more than the replays saved: steps 8.43 ms with graphs up to
  // 32 tokens against 8.16 with graphs up to 8 (the same load, an hour apart).
  static constexpr int kGraphMaxTokens = 8;
  // L2 prefetch of the next batch-1 matvec's weights on a side stream, forked
  // from the main stream while the held latency-bound producer of its input
  // runs (gpu_backend_prefetch.cc): at most `attention` bytes of the output
  // projection while attention runs, at most `after_norm` / `after_swiglu`
  // bytes of the first matrix read after a norm (Q/K/V, gate/up) / SwiGLU
  // (down); only K-quant weights (those whose activations take the Q8_K rule;
  // Q8_0's matvec asks L2 for its rows itself). 0 = none.
  // Defaults 16 / 8 / 8 MiB: with the prefetch spread over a grid
  // (gpu::LaunchPrefetchL2) tg128 Q4_K_M on the H100 2.524 -> 2.454 ms a token
  // (+2.9%, 2026-11-27 11:18 UTC); 4 / 16 MiB after a norm and SwiGLU gained
  // nothing / lost 1.5%, Q8_0 weights lost 1.2%. The one-block form of sessions
  // 8-16 lost everywhere (~0.25 TB/s: still fetching when the matvec ran).
  // Cannot change results (the prefetch writes nothing).
  struct WeightPrefetch {
    size_t attention = size_t(16) << 20;
    size_t after_norm = size_t(8) << 20;
    size_t after_swiglu = size_t(8) << 20;
  };
  void SetWeightPrefetch(const WeightPrefetch& p);
  const WeightPrefetch& weight_prefetch() const { return prefetch_; }
  // Whether batched matmuls that read the same activations are launched as one
  // grouped GEMM (default) or one launch each (for tests and benchmarks).
  void SetGemmGrouping(bool on);
  bool gemm_grouping() const { return gemm_grouping_; }
  // Whether the producer of an MMQ GEMM group's input (quantization, RMSNorm +
  // quantization, SwiGLU + quantization) launches with the group and also
  // zeroes the outputs of a GEMM that splits K, instead of a zeroing kernel
  // before the GEMM (kernels/act_quant_launch.h; on by default). The same
  // integers either way; with K splits the float sums are atomics' as before.
  void SetProducerZeroing(bool on);
  bool producer_zeroing() const { return producer_zeroing_; }
  // MMQ group launches whose producer zeroed the outputs (for tests).
  int producer_zeroed_groups() const { return producer_zeroed_groups_; }
  int graphs_captured() const { return graphs_captured_; }
  int graphs_replayed() const { return graphs_replayed_; }

  // Reserves step-metadata and scratch capacity so a captured step never reallocates.
  absl::Status Reserve(int max_tokens, int max_seqs, int max_blocks_per_seq, int max_heads,
                       int max_ctx);

 private:
  GpuBackend() = default;
  absl::Status Check(const gpu::GpuStatus& st) const;
  // Grows a device buffer to at least `bytes` (contents are not kept).
  absl::Status Grow(void** buf, size_t* cap, size_t bytes);
  // Grow for the attention scratch; a new buffer gets its split counters
  // zeroed (gpu::AttentionScratchInit) before any attention launch uses it.
  absl::Status GrowAttentionScratch(size_t bytes);

  int device_ = 0;
  std::string device_name_;
  gpu::Stream stream_ = nullptr;
  std::vector<void*> weights_;  // freed with the backend

  KvCacheShape kv_;
  std::vector<uint16_t*> k_cache_, v_cache_;

  // Step metadata: one pinned host buffer mirrored by one device buffer.
  struct StepLayout {
    size_t tokens = 0, positions = 0, slots = 0, logit_rows = 0, token_seq = 0, token_ctx = 0,
           seq_table_off = 0, block_tables = 0, total = 0;
  };
  StepLayout layout_;
  int32_t* step_host_ = nullptr;
  void* step_dev_ = nullptr;
  size_t step_cap_ = 0;  // int32 elements in both
  int cap_tokens_ = 0, cap_seqs_ = 0, cap_table_ = 0;
  int n_tokens_ = 0, n_logit_rows_ = 0, max_ctx_ = 0;
  int reserved_ctx_ = 0;  // attention splits are sized for at least this (graph replays)
  absl::Status EnsureStepCapacity(int tokens, int seqs, int table);
  const int32_t* DevI32(size_t offset) const {
    return static_cast<const int32_t*>(step_dev_) + offset;
  }

  void* matmul_scratch_ = nullptr;  // activation quantization (sized at LoadWeight)
  size_t matmul_scratch_cap_ = 0;
  // Dense prefill path (gpu::LaunchMatMulDense): the f16 copy of one weight
  // matrix, sized at LoadWeight for the largest one the path may see (not the
  // output head / embedding table, whose matmul sees only the logit rows), so
  // it is taken before the KV pool is sized from free memory; and the f16
  // activations, grown at the first large-n MatMul to n x the widest input.
  void* dense_w16_ = nullptr;
  size_t dense_w16_cap_ = 0;
  void* dense_x16_ = nullptr;
  size_t dense_x16_cap_ = 0;
  int64_t dense_max_cols_ = 0;
  size_t dense_resident_bytes_ = 0;  // every dense-path weight's f16 copy (UseSpareMemory)
  gpu::DenseScratch DenseScratchFor(GgmlType type, const void* w, int64_t rows, int64_t cols, int n);
  void* attn_scratch_ = nullptr;
  size_t attn_scratch_cap_ = 0;
  void* sample_scratch_ = nullptr;
  size_t sample_scratch_cap_ = 0;
  void* sample_io_dev_ = nullptr;  // params + recent tokens + results
  size_t sample_io_cap_ = 0;
  void* sample_io_host_ = nullptr;  // pinned mirror
  size_t sample_io_host_cap_ = 0;

  gpu::GraphExec graph_ = nullptr;

  // Quantized activations of the last small-batch MatMul input: Q/K/V (and
  // gate/up) read the same x, so it is quantized once. Any op that may write
  // activations, and any allocation change, drops it.
  // ---- automatic graphs (gpu_backend_graph.cc)
  template <typename... A>
  static SigBuf Sig(int op, const A&... a) {
    return SigBuf::Of(op, a...);
  }
  // Launches `launch` now, or defers it (with its signature) during a graph step.
  template <typename F>
  void Enqueue(const SigBuf& sig, F&& launch) {
    EmitHeld();  // ops run in the order they were issued
    EnqueueBeforeHeld(sig, std::forward<F>(launch));
    if (emit_depth_ == 0) MaybeLaunchFirstSegment();
  }
  // Enqueue without launching the held ops first: for work that may run
  // before them (the weight prefetch fork).
  template <typename F>
  void EnqueueBeforeHeld(const SigBuf& sig, F&& launch) {
    if (SkippedForTiming(sig)) return;
    if (!defer_ || explicit_capture_) {
      launch();
      return;
    }
    pending_sig_.append(sig.view());
    pending_.Add(std::forward<F>(launch));
  }
  bool SkippedForTiming(const SigBuf& sig) const;
  // The first segment of a graph step: once first_segment_ops_ ops are
  // recorded and none is held (so no fusion decision changes), they launch
  // as a graph of their own, and the rest of the step is recorded while the
  // device runs them (the step's second graph launches at Flush). Recording
  // a Llama-3-8B step takes 30-80 us of host time, otherwise all of it with
  // the device idle. Called only outside EmitHeld (emit_depth_ 0).
  void MaybeLaunchFirstSegment();
  bool NothingHeld() const;
  int emit_depth_ = 0;             // EmitHeld calls in progress
  bool segment_launched_ = false;  // this step's first segment is launched
  absl::Status segment_status_;    // its Flush's error, returned by the next Flush
  // Launches the deferred ops: replays the cached graph of the same signature,
  // or captures a new one.
  absl::Status Flush();
  // Flush's part after the swap: replays the cached graph of flushing_sig_
  // (plus the launch settings) or captures flushing_ as a new one.
  absl::Status LaunchFlushing();
  // Destroys every cached and the explicitly captured graph (the stream must be
  // idle): for when buffers they read are freed (InitKvCache).
  void DropGraphs();
  struct CachedGraph {
    size_t hash = 0;  // of sig: most lookups compare only this
    std::string sig;
    gpu::GraphExec exec = nullptr;
  };
  bool auto_graphs_ = true;
  int first_segment_ops_ = kFirstSegmentOps;
  int graph_max_tokens_ = kGraphMaxTokens;
  bool explicit_capture_ = false;
  bool defer_ = false;  // this step's ops are being deferred
  // This step's deferred launches and their signatures; Flush swaps them
  // into flushing_* (all four keep their capacity from step to step).
  LaunchList pending_, flushing_;
  std::string pending_sig_, flushing_sig_;
  std::vector<int> skipped_ops_;  // SetSkippedOpsForTiming
  // SetStepGapProbe: the step's first launch, the last two Samples' copies.
  struct GapProbe {
    bool on = false, started = false, ended = false;
    int last_end = 0;
    gpu::Event start = nullptr, end[2] = {nullptr, nullptr};
    std::vector<float> gaps_us;
  } gap_;
  void ProbeStepStart();
  void ProbeSampleEnd();  // before Sample's synchronize
  void ProbeSampleDone();  // after it
  std::vector<CachedGraph> graphs_;  // most recent last; a few are kept
  int graphs_captured_ = 0, graphs_replayed_ = 0;

  // Batch-1 matvecs that read the same quantized activations (Q, K, V; gate,
  // up) are held here and launched as one kernel (gpu::LaunchMatVecQuantizedGroup)
  // when the next op of any other kind (or a flush) comes.
  struct MatVecGroup {
    GgmlType type = GgmlType::F32;
    int64_t cols = 0;
    const void* xq = nullptr;
    int n_parts = 0;
    gpu::MatVecPart parts[gpu::kMaxMatVecParts];
    // kFuseResidualMatVec: a one-part group also adds its rows into add_to
    // (the residual Add / AddRmsNorm's add that followed it).
    float* add_to = nullptr;
    // kFuseNormMatVec: the group computes its input, xq = quantize(RmsNorm(
    // norm_x) * norm_w), itself, and stores it and the row (norm_out) as the
    // held norm would have (gpu::LaunchMatVecGroupNormIn).
    const float* norm_x = nullptr;
    const float* norm_w = nullptr;
    float* norm_out = nullptr;
    float norm_eps = 0.0f;
    // kFuseMixedMatVec: n_a > 0 parts of `type` and then one of type_b (Q/K
    // and a V of another K-quant), launched as one (gpu::LaunchMatVecMixedGroup).
    int n_a = 0;
    GgmlType type_b = GgmlType::F32;
  };
  MatVecGroup mv_group_;
  void EmitMatVecGroup();

  // ---- weight prefetch on a side stream (gpu_backend_prefetch.cc)
  WeightPrefetch prefetch_;
  gpu::Stream side_stream_ = nullptr;
  gpu::Event fork_event_ = nullptr, join_event_ = nullptr;
  bool side_join_pending_ = false;  // work forked to side_stream_ not yet joined
  // Called by a batch-1 MatMul of weight w (bytes long, of `type`) before it
  // launches the held producer of its input: forks the prefetch when one is held.
  void MaybePrefetchWeight(GgmlType type, const void* w, size_t bytes);
  // Makes the main stream wait for the forked work (before a capture ends,
  // at every flush): a graph must join its branches.
  void JoinSideStream();

  // Batched matmuls (n > kSmallBatchMax, not on the dense path) that read the
  // same x with one weight type and width (Q, K, V; gate, up) are held here
  // the same way and launched as one gpu::LaunchMatMulMmaGroup.
  struct GemmGroup {
    GgmlType type = GgmlType::F32;
    int64_t cols = 0;
    const float* x = nullptr;
    int n = 0;
    int n_parts = 0;
    gpu::MatVecPart parts[gpu::kMaxMatVecParts];
    // Non-null: the int8 MMQ GEMM (gpu::LaunchMatMulMmqGroup) on x quantized
    // into this scratch when the group opened.
    const void* xq = nullptr;
  };
  GemmGroup gemm_group_;
  bool gemm_grouping_ = true;
  void EmitGemmGroup();

  // ---- fusion of small ops into their neighbours (gpu_backend_fusion.cc)
  // The producer of a matmul input (RMSNorm, Add + RMSNorm, SwiGLU, Attention) and a
  // residual Add are held back until the next op shows how their output is
  // used: a batch-<=8 quantized MatMul reading it gets the producer launched
  // fused with the activation quantization; an RmsNorm of an Add's x turns the
  // pair into one AddRmsNorm; anything else launches the held op unchanged.
  struct HeldOp {
    enum Kind { kNone, kRmsNorm, kAddRmsNorm, kSwiGLU, kAdd };
    Kind kind = kNone;
    float* x = nullptr;        // RmsNorm / AddRmsNorm / Add: x; SwiGLU: gate
    const float* y = nullptr;  // AddRmsNorm: residual; SwiGLU: up; Add: y
    const float* w = nullptr;  // norm weight
    float* out = nullptr;      // RmsNorm / AddRmsNorm / SwiGLU output (Add: x)
    int n = 0, dim = 0;
    int64_t total = 0;  // values written to out
    float eps = 0.0f;
  };
  HeldOp held_;
  // The producer of the open MMQ group's x while producer zeroing is on,
  // launched by EmitGemmGroup just before the GEMM: kQuantize (x's plain
  // quantization) or kFused (group_held_, a norm or SwiGLU, + quantization).
  // It zeroes the parts' outputs when the group's GEMM split K the last time
  // it ran (group_splits_, by group signature; a wrong guess costs time, never
  // results: unzeroed outputs are zeroed by the GEMM launch as before).
  // kAttention: group_held_attn_, attention + merge + quantization
  // (LaunchAttentionQuantize), whose merge kernel zeroes the outputs.
  enum class GroupProducer { kNone, kQuantize, kFused, kAttention };
  GroupProducer group_producer_ = GroupProducer::kNone;
  HeldOp group_held_;
  bool producer_zeroing_ = true;
  int producer_zeroed_groups_ = 0;
  std::unordered_map<std::string, bool> group_splits_;
  // Whether the held norm / SwiGLU (not attention) can launch fused with x's
  // quantization for `type` (what EmitHeldFusedWithQuantize would do).
  bool HeldFusesWithQuantize(GgmlType type, const float* x, int n, int64_t cols) const;
  // Enqueues held op h fused with the quantization (and zeroing, zero.n > 0).
  void EnqueueFusedProducer(const HeldOp& h, GgmlType type, void* xq, const gpu::ZeroSpans& zero);
  // The outputs of group g for its producer to zero (group_held_ when fused,
  // else x's quantization); none where a span would overlap what the producer
  // reads or writes, or the producer's arrays do not suit its zeroing kernel.
  gpu::ZeroSpans GroupZeroSpans(const GemmGroup& g, bool fused) const;
  struct HeldAttention {
    bool valid = false;
    const float* q = nullptr;
    float* out = nullptr;
    gpu::AttnBatch b;
    int n_heads = 0;
    float scale = 0.0f;
    const uint16_t* k_cache = nullptr;
    const uint16_t* v_cache = nullptr;
    void* scratch = nullptr;
  };
  HeldAttention held_attn_;
  HeldAttention group_held_attn_;  // GroupProducer::kAttention
  // Whether the held attention can launch with x's quantization for `type`
  // (what EmitHeldFusedWithQuantize would do with it).
  bool HeldAttentionFusesWithQuantize(GgmlType type, const float* x, int n, int64_t cols) const;
  // Enqueues attention a with the quantization of its output (and zeroing).
  void EnqueueAttentionQuantize(const HeldAttention& a, GgmlType type, void* xq, const gpu::ZeroSpans& zero);
  // GroupZeroSpans for the attention producer a: none where a span would
  // overlap its query, output or scratch.
  gpu::ZeroSpans AttentionZeroSpans(const GemmGroup& g, const HeldAttention& a) const;
  void HoldAttention(const HeldAttention& a);
  // RoPE of Q then K held until StoreKv of that K (one fused kernel).
  struct HeldRope {
    float* x = nullptr;
    const int32_t* positions = nullptr;
    int n = 0, n_heads = 0, head_dim = 0, rot_dim = 0;
    float freq_base = 0.0f;
    bool neox = false;
  };
  HeldRope held_rope_[2];
  int n_held_rope_ = 0;
  // The held RoPEs came after the open Q/K/V matvec group (kFuseMatVecRopeKv):
  // the group launches before them, or with them as its epilogue at StoreKv.
  bool ropes_after_group_ = false;
  bool RopeJoinsMatVecGroup(const HeldRope& r) const;
  // kFuseResidualMatVec: whether x += y (n values) can ride on the open
  // one-part matvec group that writes y.
  bool ResidualJoinsMatVec(const float* x, const float* y, int64_t n) const;
  // No held op, attention, RoPE or GEMM group waits behind the open matvec
  // group (what launching the group first would reorder).
  bool NothingHeldBehindGroup() const;
  // kFuseNormMatVec: whether the held RmsNorm writing x can launch inside a
  // batch-1 group of `type` (first part w -> y, rows) that reads it.
  bool HeldNormJoinsMatVec(GgmlType type, const float* x, int64_t cols, const void* w, const float* y,
                           int64_t rows) const;
  // Launches a kFuseNormMatVec group (rope: with the RoPE + KV store epilogue).
  void EnqueueNormInGroup(const MatVecGroup& g, const gpu::MatVecRopeKv* rope);
  // Launches a kFuseMixedMatVec group (rope: with the RoPE + KV store epilogue;
  // n_heads / n_kv for the fallback's separate RoPE + KV store kernel).
  void EnqueueMixedGroup(const MatVecGroup& g, const gpu::MatVecRopeKv* rope, int n_heads, int n_kv);
  // Signature bytes of a group's parts and of a RoPE + KV store epilogue
  // (the group launches' Enqueue signatures).
  static SigBuf PartsSig(const MatVecGroup& g);
  static SigBuf RopeKvSig(const gpu::MatVecRopeKv& r);
  // Whether y (rows floats) shares memory with a norm's input x or output out
  // (cols each): such a part cannot ride in a norm-in group, where every block
  // reads x while block 0 writes out.
  static bool TouchesNormIO(const float* y, int64_t rows, const float* x, const float* out, int64_t cols);
  unsigned fusions_ = kDefaultFusions;
  void EmitHeldOp();
  void EmitHeldRopes();
  // Launches everything held (ops, ropes, matvec group), in issue order.
  void EmitHeld();
  void EmitHeldImpl();
  void HoldOp(const HeldOp& op);
  // Launches the held producer of x fused with x's quantization for `type`,
  // when it is one; returns whether it did.
  bool EmitHeldFusedWithQuantize(GgmlType type, const float* x, int n, int64_t cols, void* xq);

 public:
  // Which fusions run (gpu_backend_fusion.cc), for tests and the benchmark.
  enum Fusion : unsigned {
    kFuseNormQuantize = 1,    // RmsNorm / AddRmsNorm + quantization, Q8_0 rule (Q8_0/Q4_0 weights)
    kFuseSwiGLUQuantize = 2,  // SwiGLU + activation quantization
    kFuseAddRmsNorm = 4,      // Add then RmsNorm of its x -> AddRmsNorm
    kFuseRopeStoreKv = 8,     // RoPE Q + RoPE K + StoreKv
    kFuseAttentionQuantize = 16,  // split-K merge + activation quantization
    kFuseNormQuantizeK = 32,  // RmsNorm / AddRmsNorm + quantization, Q8_K rule (k-quants)
    kFuseMatVecRopeKv = 64,   // batch 1: RoPE Q + RoPE K + StoreKv in the Q/K/V group matvec
    kFuseNormQuantizeKBatch = 128,  // kFuseNormQuantizeK for batches of 2+ tokens (MMQ inputs)
    kFuseResidualMatVec = 256,  // batch 1: the residual add after the O / down matvec in its epilogue
    kFuseNormMatVec = 512,      // batch 1: RmsNorm + quantization inside the Q/K/V, gate/up launches
    kFuseMixedMatVec = 1024,    // batch 1: Q/K and a V of another K-quant in one launch (+ RoPE / KV epilogue)
    kAllFusions = 2047,
  };
  // Measured on the H100 (docs/gpu.md, v5): every fusion but kFuseNormQuantizeK
  // paid; that one runs the 256-wide Q8_K group reductions inside the single
  // block of a batch-1 RMSNorm and made Q4_K_M decode ~1% slower (317 -> 313
  // tok/s) then (on since 2026-11-27: below).
  // kFuseMatVecRopeKv: on since 2026-11-26 (same H100 call, tg128 off -> on:
  // Q8_0 272.3 -> 275.3 tok/s, Q4_K_M 337.6 -> 339.3, best of 3 each).
  // kFuseNormQuantizeKBatch: off, measured slower (H100, 2026-11-26 09:36 UTC, 32-decode
  // step 6.43 ms on vs 6.19-6.23 off): one 512-thread block per row does the Q8_K
  // group reductions, 32 blocks for the 132 SMs, where the stand-alone quantize
  // kernel spreads them.
  // Re-measured with the 8-values-per-lane RMSNorm + quantize kernel
  // (kernels/rmsnorm.hip, RmsNormQuantKernel; H100, 2026-11-26 11:05 UTC):
  // still slower, both stay off. tg128 Q4_K_M +32 328.2-328.9 vs +0
  // 340.1-340.3 tok/s; 32-decode step with kFuseNormQuantizeKBatch 6.73-6.74 ms
  // vs 6.60-6.64 off: one 512-thread block per row stays a longer serial chain
  // than the norm + a many-block quantize kernel overlapped by PDL.
  // kFuseResidualMatVec and kFuseNormMatVec: off, measured slower (H100,
  // 2026-11-27 02:18-02:40 UTC, tg128 alternating in one call): Q4_K_M +0 /
  // +256 / +768 342.5 / 342.5 / 305.0 and 344.9 / 343.8 / 310.4 tok/s; Q8_0
  // 287.1 / 277.8 / 249.7. The norm-in launches are faster with the kernels
  // serialized (ncu, one Q4_K_M step 3.27 vs 3.55 ms: Q/K 13.1 us against
  // 9.3 + the norm 4.1 + quantize 3.4) but the step loses the overlap between
  // neighbours; the bulk-copy kernel runs under a 196 KB shared-memory split,
  // the portable kernels around it under 16 KB (they need the L1), and a split
  // change costs ~0.8 us a boundary: part of the loss (docs/gpu.md, session 13).
  // kFuseMixedMatVec: on (H100, 2026-11-27 03:19 UTC, tg128 Q4_K_M off / on
  // 354.0 / 360.8, 354.6 / 358.5, 355.9 / 350.9 tok/s: within noise, two
  // launches fewer in half the layers, bit-identical).
  // kFuseNormQuantizeK: on since 2026-11-27 09:02 UTC (H100, tg128 Q4_K_M off /
  // on 389.1 / 394.9, 389.0 / 394.9 tok/s, with the 8-values-per-lane kernel,
  // which gpu::NormQuantKernel::kByRule now picks for the Q8_K rule); off
  // before, when the register kernel ran it and steps had no first segment.
  static constexpr unsigned kDefaultFusions =
      kAllFusions & ~kFuseNormQuantizeKBatch & ~kFuseResidualMatVec & ~kFuseNormMatVec;
  void SetFusions(unsigned mask);
  unsigned fusions() const { return fusions_; }
  // Timing experiments only (bench_gpu_decode's leave-out lines): the ops
  // whose signature tag (Sig's first argument) is in `tags` are not launched,
  // so every result is wrong. Empty (the default) launches every op.
  void SetSkippedOpsForTiming(std::vector<int> tags);
  // Timing experiments only (bench_gpu_decode, RF_HOST_TIMES): while on, each
  // step's first graph launch and each Sample's result copy record timing
  // events, and TakeStepGapsUs() returns (and clears) the device time from
  // one Sample's result copy to the next step's first launch, us a step: how
  // long the device waited for the host between steps (the graph's own
  // launch latency not included).
  void SetStepGapProbe(bool on);
  std::vector<float> TakeStepGapsUs();
  // All fusions (true) or none: each op its own kernel (false).
  void SetFusion(bool on) { SetFusions(on ? kAllFusions : 0u); }

 private:
  const float* act_x_ = nullptr;
  int act_n_ = 0, act_rule_ = 0;
  int64_t act_cols_ = 0;
  // Also counts drops and ends the dense path's f16 activation reuse when a
  // small-batch matmul ran since the last drop (gpu_backend_dense.cc).
  void DropActivationCache() {
    if (act_x_ != nullptr) x16_.x = nullptr;
    act_x_ = nullptr;
    ++dense_drops_;
  }

  // ---- dense prefill path extras (gpu_backend_dense.cc)
 public:
  // Options of the dense (n >= ~192) matmul path:
  // - reuse_x16: consecutive dense matmuls reading the same x (Q / K / V,
  //   gate / up) share one f16 conversion of it;
  // - f16_producers: a held RMSNorm / AddRmsNorm / SwiGLU whose output a
  //   dense matmul reads writes it as f16 too (no conversion pass);
  // - overlap_dequant: while a dense GEMM runs (on a high-priority stream),
  //   the weights of the dense matmul that followed this one last time are
  //   dequantized on a side stream into a second f16 buffer (one more
  //   largest-matrix copy of device memory), so the next GEMM need not wait
  //   for its dequantization. Weights loaded by LoadWeight only (read-only).
  // - dense_small_q4k (with reuse_x16 and overlap_dequant only): Q4_K
  //   matrices of <= 1024 rows (K / V projections) go dense from
  //   gpu::kDenseMinTokens too, their crossover (gpu::DenseMinTokensFor) having
  //   been set by the conversion and dequantization the other two options hide.
  // The first three run the same kernels on the same values: results are bit
  // for bit those with all off; the fourth moves matmuls between paths.
  // Defaults: the three measured faster on the H100 (pp512 of the
  // Llama-3-8B-shaped model, same run, all off -> on: Q4_K_M 12442 -> 13900
  // tok/s, Q8_0 12245 -> 14074).
  // - fuse_gate_up_swiglu (with any of the first three): two dense matmuls
  //   of one type and shape reading the same x (gate, up) followed by
  //   SwiGLU(their outputs) run as ONE GEMM over the two matrices' rows
  //   interleaved (gpu::LaunchDequantizeF16Pair; the resident f16 copy and
  //   the side-stream dequantization the same way) with SwiGLU in its
  //   epilogue (gpu::LaunchGemmF16SwiGLU), which also writes the result as
  //   f16 for the next dense matmul (the down projection): no SwiGLU kernel,
  //   no f16 conversion. The two matmuls are held until the next op shows
  //   whether SwiGLU follows (otherwise they launch unchanged). Same sums,
  //   same SwiGLU expression: bit for bit the unfused outputs.
  //   Off by default: on the H100 (2026-11-26 ~11:08 UTC, pp512 of the
  //   Llama-3-8B-shaped model, one call, off / on / on + unwritten) Q4_K_M
  //   13520 / 13850 / 13733 tok/s, Q8_0 13810 / 13598 / 13641: a wash while
  //   the weights are dequantized per forward (the interleaved pair's
  //   dequantization has only the short O projection's GEMM to hide behind).
  //   With resident f16 weights (SetDenseResidentF16) + 224 tiles it pays:
  //   Q4_K_M 15636 -> 16791 tok/s (16928 unwritten), Q8_0 15791 -> 16764
  //   (16953), i.e. ~31% of the 763 TFLOP/s fp16 peak.
  // - fused_gate_up_unwritten (with the fusion): the fused GEMM does not write
  //   the gate and up outputs (only SwiGLU's out): for callers that, like the
  //   Llama FFN, never read them after SwiGLU; by default they are written.
  struct DensePrefillOptions {
    bool reuse_x16 = true;
    bool f16_producers = true;
    bool overlap_dequant = true;
    bool dense_small_q4k = false;
    bool fuse_gate_up_swiglu = false;
    bool fused_gate_up_unwritten = false;
  };
  void SetDensePrefill(const DensePrefillOptions& o);
  const DensePrefillOptions& dense_prefill() const { return dense_opts_; }
  // What the options did, for tests and the benchmark.
  struct DensePrefillStats {
    int64_t x16_reused = 0;       // conversions skipped: f16 copy reused
    int64_t f16_produced = 0;     // conversions skipped: producer wrote f16
    int64_t prefetch_hits = 0;    // dense matmuls whose weights a side stream had dequantized
    int64_t prefetch_misses = 0;  // overlap on, weights dequantized in line
    int64_t swiglu_fused = 0;     // gate + up + SwiGLU run as one GEMM (fuse_gate_up_swiglu)
  };
  const DensePrefillStats& dense_prefill_stats() const { return dense_stats_; }

 private:
  DensePrefillOptions dense_opts_;
  DensePrefillStats dense_stats_;
  // Launches a matmul that reached the dense launch of MatMul: returns false
  // when the default launch (gpu::LaunchMatMul) should run it.
  bool EnqueueDenseMatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y,
                          int n, const gpu::DenseScratch& dense);
  // The held producer of x (RmsNorm, AddRmsNorm, SwiGLU; nothing else held)
  // launched writing x16 too; returns whether it was.
  bool EmitHeldAsF16(const float* x, int n, int64_t cols, uint16_t* x16);
  // f16 activation reuse: dense_x16_ holds f16(x) for this key while every
  // drop since the fill came from a batched MatMul (each drops once and calls
  // DenseScratchFor once) whose output missed x, and no small-batch matmul ran.
  struct X16Cache {
    const float* x = nullptr;
    int n = 0;
    int64_t cols = 0;
    const void* buf = nullptr;
    uint64_t drops = 0, calls = 0;
  };
  X16Cache x16_;
  uint64_t dense_drops_ = 0, dense_calls_ = 0;
  bool X16Valid(const float* x, int n, int64_t cols, const void* buf) const;
  void X16NoteWrite(const float* p, int64_t count);
  // Overlapped dequantization: buffer 0 is dense_w16_, buffer 1 grows to its
  // size while overlap_dequant is on; next_dense_ maps a weight to the dense
  // matmul that followed it last time. (Since session 6: to the batched
  // matmul that followed it, dense or not, learned in DenseScratchFor with
  // dense_last_w_; the fork walks it to the next one that is dense now.)
  struct DenseWeightRef {
    const void* w = nullptr;
    GgmlType type = GgmlType::F32;
    int64_t rows = 0, cols = 0;
  };
  struct DenseOverlapRes {  // freed with the backend, after its streams are idle
    void* w16b = nullptr;
    size_t w16b_cap = 0;
    gpu::Stream gemm = nullptr;  // high priority
    gpu::Event before_gemm = nullptr, after_gemm = nullptr, side_done = nullptr;
    // f16 output of the fused gate / up + SwiGLU GEMM: the down projection's
    // input (dense_x16_ holds the GEMM's own input meanwhile).
    void* x16b = nullptr;
    size_t x16b_cap = 0;
    ~DenseOverlapRes();
  };
  DenseOverlapRes dense_ovl_;
  DenseWeightRef dense_pf_;      // being / been dequantized by the side stream into dense_pf_buf_
  int dense_pf_buf_ = -1;        // buffer the side stream wrote last (-1: none)
  size_t dense_pf_caps_[2] = {0, 0};  // both buffers' sizes then (a regrown buffer lost it)
  const void* dense_last_w_ = nullptr;
  std::unordered_map<const void*, DenseWeightRef> next_dense_;
  std::unordered_set<const void*> loaded_weights_;  // weights_ as a set (rebuilt when it grows)
  size_t loaded_weights_n_ = 0;
  bool DenseOverlapReady();
  void* DenseW16(int buf) const { return buf == 0 ? dense_w16_ : dense_ovl_.w16b; }
  // fuse_gate_up_swiglu: dense_pf_ is the gate of an interleaved pair whose
  // up is this (null: a single matrix); dense_pairs_ maps each gate fused so
  // far to its up (the fork dequantizes the pair).
  const void* dense_pf_pair_ = nullptr;
  std::unordered_map<const void*, const void*> dense_pairs_;
  // One dense GEMM with its weights' f16 source (resident, side-stream hit,
  // or dequantized now) and the fork of the next one's dequantization: w_up
  // non-null = the fused gate / up + SwiGLU GEMM (out, out16, gate, up).
  struct DenseGemmJob {
    GgmlType type = GgmlType::F32;
    const void* w = nullptr;
    const void* w_up = nullptr;
    int64_t rows = 0, cols = 0;  // of one matrix
    const uint16_t* x16 = nullptr;
    float* y = nullptr;
    int n = 0;
    bool prepared = false;  // DenseScratch::operands_prepared
    bool overlap = false;
    uint16_t* out16 = nullptr;
    float* gate = nullptr;
    float* up = nullptr;
  };
  void EnqueueDenseGemm(const DenseGemmJob& j);
  // Dense matmuls held for the fusion: a gate candidate, then its up.
  struct HeldDense {
    int count = 0;
    DenseGemmJob parts[2];
    const float* x = nullptr;
  };
  HeldDense held_dense_;
  void EmitHeldDense();
  // SwiGLU over the outputs of the held pair: the fused GEMM; false if not.
  bool FuseHeldGateUpSwiGLU(const float* gate, const float* up, float* out, int64_t total);
  // Room for a fused pair of rows x cols at n tokens (grows the f16 weight
  // buffers to twice a matrix and the f16 output; may flush).
  bool DensePairRoom(GgmlType type, int64_t rows, int64_t cols, int n);

 public:
  // Off by default: the dense path keeps the f16 copy of every weight it
  // dequantizes (device memory: 2 bytes a weight, ~14 GB for Llama-3-8B) and
  // reuses it in later prefills, which then dequantize nothing: what a GEMM
  // that dequantizes in its loader could save at most. Falls back to the
  // per-call dequantization once an allocation fails. Same values, so results
  // are bit for bit those without it. H100, pp512 of the Llama-3-8B-shaped
  // model (2026-11-26 08:57 UTC): Q4_K_M 15402 tok/s, Q8_0 15561 (default
  // path ~13900 / ~14000 in the same run); with 128 x 224 GEMM tiles
  // (gpu::DenseTileConfig::tile224 = 1) 16011 / 16177.
  void SetDenseResidentF16(bool on);
  // Spare memory (after the KV pool) holds the resident f16 copies when all of
  // them fit (dense_resident_bytes_, ~14 GB for Llama-3-8B); then prefill also
  // runs gate / up / SwiGLU as one GEMM and 128 x 224 tiles, the combination
  // that pays with resident weights (H100, 2026-11-26 11:08 UTC: pp512 Q4_K_M
  // 16791 tok/s, Q8_0 16764, ~31% of the fp16 peak; ~26% without).
  size_t UseSpareMemory(size_t spare_bytes) override;

 private:
  struct DenseResident {  // freed with the backend
    std::unordered_map<const void*, void*> w16;
    std::unordered_map<const void*, void*> pair16;  // gate -> interleaved gate / up copy
    bool on = false, failed = false;
    void Clear();
    ~DenseResident() { Clear(); }
  };
  DenseResident dense_res_;
  // Prefill runs on the Hopper dense GEMM over the resident f16 weights: dense
  // steps from kDenseMinTokensResidentWgmma tokens, whose time rises per
  // 128-token tile (StepTokenSizes, DefaultPrefillCapWithDecodes).
  bool DenseStepsOnWgmma() const { return dense_res_.on && !dense_res_.failed && gpu::DenseWgmmaActive(); }
  // The resident f16 copy of w (dequantized now, on the main stream, if new);
  // nullptr when resident copies are off or out of memory.
  const uint16_t* DenseResidentW16(GgmlType type, const void* w, int64_t rows, int64_t cols);
  // The same for an interleaved gate / up pair (keyed by the gate).
  const uint16_t* DenseResidentPairW16(GgmlType type, const void* gate, const void* up, int64_t rows, int64_t cols);
};

// Backend on a given device (CreateGpuBackend() uses device 0).
absl::StatusOr<std::unique_ptr<Backend>> CreateGpuBackendOnDevice(int device);

}  // namespace rocmforge
