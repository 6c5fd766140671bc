// Helpers for the Engine tests: create an engine on a bundled tiny model and
// run requests to completion, collecting every event.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "nlohmann/json.hpp"

namespace rocmforge::testing {

inline std::string EngineModelPath(const std::string& name) {
  return std::string(ROCMFORGE_MODELS_DIR) + "/" + name;
}

inline nlohmann::json EngineReference(const std::string& stem) {
  std::ifstream in(EngineModelPath(stem + ".reference.json"));
  EXPECT_TRUE(in.good()) << "missing reference " << stem;
  return nlohmann::json::parse(in);
}

// Everything one request's sink saw.
struct Outcome {
  std::vector<TokenId> tokens;
  std::string text;
  std::vector<std::string> pieces;  // text per event
  FinishReason reason = FinishReason::kNone;
  Usage usage;
  std::string error;
  int finished_events = 0;
  int events = 0;
};

// Thread-safe collector: one Outcome per submitted request.
class Collector {
 public:
  EventSink Sink(size_t index, std::function<void(size_t, const TokenEvent&)> hook = nullptr) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (outcomes_.size() <= index) outcomes_.resize(index + 1);
    }
    return [this, index, hook](TokenEvent&& ev) {
      if (hook) hook(index, ev);
      std::lock_guard<std::mutex> lock(mu_);
      Outcome& o = outcomes_[index];
      ++o.events;
      o.tokens.insert(o.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
      o.text += ev.text;
      o.pieces.push_back(ev.text);
      if (ev.finished) {
        ++o.finished_events;
        o.reason = ev.finish_reason;
        o.usage = ev.usage;
        o.error = ev.error;
        ++done_;
        cv_.notify_all();
      }
    };
  }
  // Waits until `n` requests finished (at most 120 s, then fails).
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(120), [&] { return done_ >= n; });
  }
  std::vector<Outcome> outcomes() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> outcomes_;
  int done_ = 0;
};

// Submits all requests at once and waits for every one to finish.
inline std::vector<Outcome> RunAll(Engine& engine, const std::vector<GenerationRequest>& requests) {
  Collector c;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto id = engine.Submit(requests[i], c.Sink(i));
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return {};
  }
  EXPECT_TRUE(c.WaitFor(static_cast<int>(requests.size()))) << "requests did not finish";
  return c.outcomes();
}

inline Outcome RunOne(Engine& engine, const GenerationRequest& request) {
  auto all = RunAll(engine, {request});
  return all.empty() ? Outcome{} : all[0];
}

inline std::unique_ptr<Engine> MakeEngine(const std::string& model, EngineOptions opt = {},
                                          EngineObserver* observer = nullptr) {
  opt.model_path = EngineModelPath(model);
  // One thread: CI runs test binaries side by side on 2 cores, where a pool
  // waiting on a descheduled worker costs more than it gains on tiny models.
  opt.threads = 1;
  // A small pool unless the test sizes it: the CPU backend zeroes it.
  if (opt.kv_blocks == 0) opt.kv_blocks = 256;
  auto e = Engine::Create(opt, observer);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// Counts the observer hooks (called on the engine thread).
class CountingObserver : public EngineObserver {
 public:
  void OnStep(int32_t seqs, int32_t tokens, double) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++steps;
    max_batch_sequences = std::max(max_batch_sequences, seqs);
    max_batch_tokens = std::max(max_batch_tokens, tokens);
  }
  void OnPreemption() override { std::lock_guard<std::mutex> lock(mu_); ++preemptions; }
  void OnPrefixLookup(int32_t, int32_t cached) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups;
    cached_tokens += cached;
  }
  void OnFirstToken(double, double) override { std::lock_guard<std::mutex> lock(mu_); ++first_tokens; }
  void OnToken(double) override { std::lock_guard<std::mutex> lock(mu_); ++later_tokens; }
  void OnFinish(FinishReason, const Usage&) override { std::lock_guard<std::mutex> lock(mu_); ++finishes; }

  std::mutex mu_;
  int steps = 0, max_batch_sequences = 0, max_batch_tokens = 0, preemptions = 0, lookups = 0;
  int cached_tokens = 0, first_tokens = 0, later_tokens = 0, finishes = 0;
};

// Polls Stats() until pred holds (engine stats are published between steps).
template <typename Pred>
bool WaitForStats(const Engine& e, Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred(e.Stats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace rocmforge::testing
