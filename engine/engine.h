// The engine: one model on one backend serving many concurrent generation
// requests with continuous batching over a paged KV cache with prefix reuse.
//
// Threading contract: Submit/Cancel/Stats are thread-safe and never block on
// the step loop for long. The loop runs on the engine's own thread; it calls
// each request's EventSink on that thread, so a sink must not block (the
// worker queues events per stream; slow clients never stall the loop).
// Split of concerns (as in vLLM): sched/ decides (StepPlan), the model runner
// computes (Model::Forward + Backend::Sample), this class ties them together.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend/memory_usage.h"
#include "engine/model/model_config.h"
#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/tokenizer.h"

namespace rocmforge {

enum class FinishReason { kNone = 0, kLength, kStop, kEos, kCancelled, kError };
const char* FinishReasonName(FinishReason r);  // "length", "stop", "eos", "cancelled", "error"

struct EngineOptions {
  std::string model_path;
  std::string device = "cpu";        // "cpu" or "gpu"
  int32_t threads = 0;               // CPU backend threads; 0 = all cores
  int32_t context_length = 0;        // served context; 0 = model's n_ctx_train capped at 8192
  int32_t max_batch_tokens = 512;    // per-step token budget (chunked prefill)
  int32_t max_running = 64;          // sequences in the running batch at most
  // Prefill cap in steps with decodes (0: none; -1: the backend's
  // Backend::DefaultPrefillCapWithDecodes()).
  int32_t max_prefill_tokens_with_decodes = 0;
  bool fill_step_sizes = true;       // raise that cap to the backend's StepTokenSizes()
  bool trim_step_sizes = true;       // and cut steps just past one of them back to it
  int32_t kv_block_size = 16;
  int32_t kv_blocks = 0;             // 0 = sized from available memory
  double kv_memory_fraction = 0.9;   // of the backend's available memory when sizing
  int64_t kv_memory_cap_bytes = 0;   // 0 = no cap
  bool prefix_cache = true;
  // Let the backend keep caches in the memory the KV pool leaves unused
  // (Backend::UseSpareMemory; the GPU's f16 weight copies for prefill).
  bool use_spare_memory = true;
};

struct GenerationRequest {
  std::vector<TokenId> prompt;       // already tokenized (BOS included if wanted)
  SamplingParams sampling;
  StoppingParams stopping;
  int32_t priority = 0;              // higher first; FCFS within a priority
  // Resume after failover: the last `resume_generated` tokens of `prompt` were
  // already generated (and sent) by another worker. Sampling continues at
  // Philox step resume_generated, max_tokens counts them as used, and stop
  // strings see them.
  int32_t resume_generated = 0;
  std::string request_id;
};

struct TokenLogprobs {
  float logprob = 0;
  std::vector<std::pair<TokenId, float>> top;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;
  int32_t generated_tokens = 0;
  double queue_seconds = 0;
  double time_to_first_token_seconds = 0;
  double total_seconds = 0;
  uint64_t seed = 0;
};

// One message to a stream. Text is complete UTF-8 (held back until a
// character completes) and excludes any matched stop string.
struct TokenEvent {
  std::vector<TokenId> token_ids;
  std::string text;
  std::vector<TokenLogprobs> logprobs;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;  // when finished
  Usage usage;                                       // when finished
  std::string error;                                 // with kError
};
using EventSink = std::function<void(TokenEvent&&)>;

struct EngineStats {
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t free_kv_blocks = 0;
  int32_t total_kv_blocks = 0;
  double tokens_per_second = 0;      // generated, recent window
  uint64_t preemptions = 0;
  uint64_t prefix_hit_tokens = 0;    // prompt tokens served from the prefix cache
  uint64_t prompt_tokens = 0;        // all prompt tokens submitted
  MemoryUsage device_memory;         // the backend's device (host RSS / RAM on the CPU)
};

// Hooks for metrics; called on the engine thread. All have empty defaults.
// Where one engine step's wall time went, in the order the phases run. The
// device works from the first kernel Forward enqueues until Sample has its
// results, so plan + stream (and the host part of forward before its first
// kernel) are time the device may sit idle between steps.
struct StepPhases {
  double plan_seconds = 0;     // scheduling the step and building its batch (host)
  double forward_seconds = 0;  // Model::Forward (host preparation, kernel enqueue), then the
                               // last step's token events handed to their sinks
  double sample_seconds = 0;   // Backend::Sample: waits for the forward pass, then samples
  double stream_seconds = 0;   // committing the step: detokenizing, stop checks (host)
};

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(int32_t /*batch_sequences*/, int32_t /*batch_tokens*/, double /*step_seconds*/) {}
  // Called with OnStep, for every step that ran a forward pass.
  virtual void OnStepPhases(const StepPhases& /*phases*/) {}
  virtual void OnPreemption() {}
  virtual void OnPrefixLookup(int32_t /*prompt_tokens*/, int32_t /*cached_tokens*/) {}
  virtual void OnFirstToken(double /*queue_seconds*/, double /*ttft_seconds*/) {}
  virtual void OnToken(double /*inter_token_seconds*/) {}
  virtual void OnFinish(FinishReason /*reason*/, const Usage& /*usage*/) {}
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options,
                                                        EngineObserver* observer = nullptr);
  virtual ~Engine() = default;

  // Validates (prompt empty or over the context, unknown token ids, bad
  // sampling/stopping values -> InvalidArgument with a clear message) and
  // queues the request. Returns its id. The sink gets every event, the last
  // with finished = true, exactly once.
  virtual absl::StatusOr<uint64_t> Submit(GenerationRequest request, EventSink sink) = 0;
  // Cancels a queued or running request; its blocks are freed within one step
  // and its sink gets a final kCancelled event. Unknown ids are ignored.
  virtual void Cancel(uint64_t request_id) = 0;
  virtual EngineStats Stats() const = 0;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ModelConfig& model_config() const = 0;
  virtual int32_t context_length() const = 0;
  virtual std::string device_name() const = 0;     // "cpu", "cuda:0", "hip:0"
  virtual std::string quantization() const = 0;    // e.g. "F16", "Q4_K_M"

  // Stops the loop; pending requests finish with kCancelled.
  virtual void Shutdown() = 0;
};

}  // namespace rocmforge
