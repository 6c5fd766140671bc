// The Engine implementation: the loop thread that ties the scheduler (what
// runs), the model (computes it) and the per-request TokenStreams (what the
// clients see) together. Also the pure helpers Create() uses, exposed here so
// unit tests can check them without a model.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/engine.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/model.h"
#include "engine/sched/scheduler.h"
#include "engine/token_stream_internal.h"

namespace rocmforge {

// The served context when EngineOptions::context_length is 0.
int32_t DefaultContextLength(int32_t n_ctx_train);

struct KvPoolSize {
  int32_t num_blocks = 0;
  int32_t context_length = 0;  // may shrink so one sequence always fits the pool
};

// Blocks of the paged KV pool: options.kv_blocks when set, else
// available_bytes * kv_memory_fraction (capped by kv_memory_cap_bytes) over
// the bytes of one block; never more than max_running full contexts need
// (the CPU backend zeroes its pool, so "all free memory" would be costly).
// The context shrinks to what the pool holds, so a lone sequence never waits
// for blocks forever. FailedPrecondition when not even 2 tokens fit.
absl::StatusOr<KvPoolSize> SizeKvPool(const EngineOptions& options, size_t available_bytes,
                                      size_t kv_bytes_per_token, int32_t context_length);

// InvalidArgument with a message naming the problem (see Engine::Submit).
absl::Status ValidateGenerationRequest(const GenerationRequest& request, int32_t context_length,
                                       int32_t n_vocab);

// Name of the model's quantization from general.file_type, else the type of
// its first 2-D weight.
std::string QuantizationName(const gguf::GgufFile& file);

class EngineImpl final : public Engine {
 public:
  struct Parts {
    std::unique_ptr<gguf::GgufFile> file;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<Model> model;
    int32_t context_length = 0;
    int32_t kv_blocks = 0;
  };
  EngineImpl(const EngineOptions& options, Parts parts, EngineObserver* observer);
  ~EngineImpl() override;

  absl::StatusOr<uint64_t> Submit(GenerationRequest request, EventSink sink) override;
  void Cancel(uint64_t request_id) override;
  EngineStats Stats() const override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ModelConfig& model_config() const override { return model_->config(); }
  int32_t context_length() const override { return context_length_; }
  std::string device_name() const override;
  std::string quantization() const override { return quantization_; }
  void Shutdown() override;

 private:
  using Clock = std::chrono::steady_clock;

  // Everything the loop keeps about one request.
  struct Active {
    uint64_t id = 0;
    GenerationRequest request;
    EventSink sink;
    std::unique_ptr<TokenStream> stream;
    Clock::time_point submitted;
    Clock::time_point last_token;
    bool admitted = false;
    bool has_token = false;
    Usage usage;
  };

  void Loop();
  void TakeInbox(std::vector<std::unique_ptr<Active>>* added, std::vector<uint64_t>* cancels,
                 bool* stopping);
  void RunStep();
  void OnSampled(Active& a, const SampleResult& r);
  void Finish(Active& a, FinishReason reason, std::string text, std::string error = {});
  // Hands the last step's token events to their sinks (in order).
  void DeliverEvents();
  void FailAll(const std::vector<uint64_t>& ids, const std::string& error);
  void PublishStats(int32_t step_generated, double step_seconds);
  double Seconds(Clock::time_point from, Clock::time_point to) const {
    return std::chrono::duration<double>(to - from).count();
  }

  const EngineOptions options_;
  EngineObserver* observer_;
  EngineObserver null_observer_;
  // Destruction order matters: the model frees scratch through the backend,
  // and its weights view the file's mapping.
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Model> model_;
  const int32_t context_length_;
  const std::string quantization_;

  // Loop-thread state.
  kv::KvCacheManager kv_;
  sched::Scheduler sched_;
  std::unordered_map<uint64_t, std::unique_ptr<Active>> active_;
  std::deque<std::pair<Clock::time_point, int32_t>> recent_generated_;  // tokens/s window
  // The last step's token events, not yet given to their sinks. They go out
  // once the next step's forward pass is enqueued, so the device computes
  // while the sinks run (gRPC writes: ~0.5 ms a step at 32 streams on the
  // H100 worker, time the device sat idle), and before anything else reaches
  // a sink (Finish: cancellation, failure, shutdown) or the loop may wait.
  struct UndeliveredEvent {
    EventSink sink;  // a copy; the Active's own for a final event
    TokenEvent event;
  };
  std::vector<UndeliveredEvent> undelivered_;

  // Shared with Submit/Cancel/Stats.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Active>> inbox_;
  std::vector<uint64_t> cancels_;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;

  std::once_flag shutdown_once_;
  std::thread thread_;
};

}  // namespace rocmforge
