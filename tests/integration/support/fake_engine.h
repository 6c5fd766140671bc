// Test support: an Engine that needs no model weights. It "generates" a
// deterministic token sequence (a function of the prompt and the step) on its
// own thread at a configurable pace, honours max_tokens, Cancel and Shutdown,
// reports Stats() like a block pool, and calls the observer hooks. Servers
// under test (worker, router) can be exercised fast and deterministically.
#pragma once

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "engine/gguf/gguf_file.h"

namespace rocmforge::testing {

class FakeEngine : public Engine {
 public:
  struct Options {
    std::string tokenizer_gguf;              // a model file to take the tokenizer from
    int32_t context_length = 128;
    std::chrono::microseconds token_interval{500};
    int32_t total_kv_blocks = 64;
    int32_t kv_block_size = 16;
  };
  static absl::StatusOr<std::unique_ptr<FakeEngine>> Create(const Options& options,
                                                            EngineObserver* observer);
  ~FakeEngine() override;

  // The token the fake emits at `step` for `prompt` (what tests compare to).
  TokenId TokenAt(const std::vector<TokenId>& prompt, int32_t step) const;
  // While paused, running requests produce no tokens (drain tests).
  void SetPaused(bool paused);
  int32_t cancels() const { return cancels_.load(); }
  int32_t submitted() const { return submitted_.load(); }

  absl::StatusOr<uint64_t> Submit(GenerationRequest request, EventSink sink) override;
  void Cancel(uint64_t request_id) override;
  EngineStats Stats() const override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ModelConfig& model_config() const override { return config_; }
  int32_t context_length() const override { return options_.context_length; }
  std::string device_name() const override { return "cpu"; }
  std::string quantization() const override { return "F16"; }
  void Shutdown() override;

 private:
  struct Running {
    GenerationRequest request;
    EventSink sink;
    std::unique_ptr<IncrementalDecoder> decoder;
    int32_t generated = 0;
    bool cancelled = false;
    std::chrono::steady_clock::time_point submitted, last_token;
  };
  FakeEngine() = default;
  void Loop();
  int32_t BlocksFor(const Running& r) const;

  Options options_;
  EngineObserver* observer_ = nullptr;
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig config_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Running> running_;
  uint64_t next_id_ = 1;
  bool paused_ = false;
  bool stop_ = false;
  std::atomic<int32_t> cancels_{0};
  std::atomic<int32_t> submitted_{0};
  std::thread loop_;
};

}  // namespace rocmforge::testing
