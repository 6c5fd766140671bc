// The worker's Prometheus metrics, exactly as docs/metrics.md (worker section)
// names them. Three feeds:
//   - EngineObserver hooks (engine thread): steps, preemptions, first token,
//     inter-token latency, finished requests;
//   - the service (gRPC threads): rejections, generated tokens, draining;
//   - a Stats() sample taken on every scrape (running/waiting, KV blocks,
//     prefix-cache and prompt-token counters), so a scrape is never stale.
// prometheus-cpp metrics are thread-safe; the scrape-time sample is
// serialized by a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace rocmforge::worker {

// Bucket boundaries (seconds unless noted), fit for LLM latencies.
const std::vector<double>& TtftBuckets();          // also queue time: 0.005 .. 60
const std::vector<double>& InterTokenBuckets();    // 0.001 .. 2
const std::vector<double>& DurationBuckets();      // 0.05 .. 600
const std::vector<double>& StepBuckets();          // 0.0005 .. 5
const std::vector<double>& BatchSizeBuckets();     // 1 .. 512, powers of two
const std::vector<double>& BatchTokenBuckets();    // 1 .. 4096 tokens (the GPU's GEMM tiles 96, 192, 384 too)

enum class RejectReason { kInvalidArgument, kDraining, kOverloaded };

class WorkerMetrics : public EngineObserver {
 public:
  WorkerMetrics();
  ~WorkerMetrics() override;

  // What to scrape. Null results (no engine yet) leave the gauges as they are.
  void SetStatsSource(std::function<std::optional<EngineStats>()> source);
  void SetModelInfo(const std::string& model, const std::string& quantization,
                    const std::string& device);

  void RecordRejected(RejectReason reason);
  void AddGeneratedTokens(int64_t n);
  void SetDraining(bool draining);

  // EngineObserver.
  void OnStep(int32_t batch_sequences, int32_t batch_tokens, double step_seconds) override;
  void OnStepPhases(const StepPhases& phases) override;
  void OnPreemption() override;
  void OnFirstToken(double queue_seconds, double ttft_seconds) override;
  void OnToken(double inter_token_seconds) override;
  void OnFinish(FinishReason reason, const Usage& usage) override;

  // Serves the registry, sampling Stats() first. Register with an Exposer.
  std::shared_ptr<prometheus::Collectable> collectable() { return collectable_; }
  // Text exposition of everything (for tests and debugging).
  std::string Serialize();

 private:
  class SamplingCollectable;
  void Sample();

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> collectable_;

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Histogram& ttft_;
  prometheus::Histogram& inter_token_;
  prometheus::Histogram& duration_;
  prometheus::Histogram& queue_time_;
  prometheus::Gauge& running_;
  prometheus::Gauge& waiting_;
  prometheus::Gauge& kv_usage_;
  prometheus::Gauge& kv_free_;
  prometheus::Gauge& kv_used_;
  prometheus::Gauge& kv_total_;
  prometheus::Gauge& prefix_hit_ratio_;
  prometheus::Counter& prefix_hit_tokens_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generation_tokens_;
  prometheus::Histogram& batch_size_;
  prometheus::Histogram& batch_tokens_;
  prometheus::Histogram& step_duration_;
  // rocmforge_step_phase_seconds_total by phase: plan, forward, sample, stream.
  prometheus::Counter& phase_plan_;
  prometheus::Counter& phase_forward_;
  prometheus::Counter& phase_sample_;
  prometheus::Counter& phase_stream_;
  prometheus::Counter& preemptions_;
  prometheus::Gauge& draining_;
  prometheus::Family<prometheus::Gauge>& memory_used_;
  prometheus::Family<prometheus::Gauge>& memory_total_;
  prometheus::Family<prometheus::Gauge>& model_info_;

  std::mutex mu_;  // guards the fields below (scrape-time sampling)
  std::function<std::optional<EngineStats>()> stats_source_;
  std::string device_ = "cpu";
  uint64_t seen_prefix_hit_tokens_ = 0;
  uint64_t seen_prompt_tokens_ = 0;
};

}  // namespace rocmforge::worker
