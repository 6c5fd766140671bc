#include "worker/worker_metrics.h"

#include <utility>

#include "prometheus/text_serializer.h"

namespace rocmforge::worker {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Histogram& SingleHistogram(prometheus::Registry& r, const char* name, const char* help,
                                       const std::vector<double>& buckets) {
  return BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}
prometheus::Gauge& SingleGauge(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& SingleCounter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& StepPhaseCounter(prometheus::Registry& r, const char* phase) {
  return BuildCounter()
      .Name("rocmforge_step_phase_seconds_total")
      .Help("Engine step time by phase: plan (schedule, build the batch), forward (enqueue; the last step's tokens to their streams), sample (waits for the device), stream (commit: detokenize, stop checks)")
      .Register(r)
      .Add({{"phase", phase}});
}

}  // namespace

const std::vector<double>& TtftBuckets() {
  static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2.5,   5,    10,    20,   30,  60};
  return b;
}
const std::vector<double>& InterTokenBuckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05,
                                        0.075, 0.1,    0.2,   0.5,  1,    2};
  return b;
}
const std::vector<double>& DurationBuckets() {
  static const std::vector<double> b = {0.05, 0.1, 0.25, 0.5, 1,  2.5, 5,
                                        10,   20,  30,   60,  120, 300, 600};
  return b;
}
const std::vector<double>& StepBuckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5};
  return b;
}
const std::vector<double>& BatchSizeBuckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return b;
}
const std::vector<double>& BatchTokenBuckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096};
  return b;
}

// Samples Stats() before handing the registry's families to the exposer.
class WorkerMetrics::SamplingCollectable : public prometheus::Collectable {
 public:
  explicit SamplingCollectable(WorkerMetrics* owner) : owner_(owner) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    owner_->Sample();
    return owner_->registry_->Collect();
  }

 private:
  WorkerMetrics* owner_;
};

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(BuildCounter().Name("rocmforge_requests_total").Help("Finished requests by finish reason").Register(*registry_)),
      rejected_(BuildCounter().Name("rocmforge_request_rejected_total").Help("Requests refused before queueing").Register(*registry_)),
      ttft_(SingleHistogram(*registry_, "rocmforge_time_to_first_token_seconds", "Submit to first token", TtftBuckets())),
      inter_token_(SingleHistogram(*registry_, "rocmforge_inter_token_latency_seconds", "Between consecutive tokens of a stream", InterTokenBuckets())),
      duration_(SingleHistogram(*registry_, "rocmforge_request_duration_seconds", "Submit to last token", DurationBuckets())),
      queue_time_(SingleHistogram(*registry_, "rocmforge_queue_time_seconds", "Submit to first scheduled step", TtftBuckets())),
      running_(SingleGauge(*registry_, "rocmforge_requests_running", "Sequences in the running batch")),
      waiting_(SingleGauge(*registry_, "rocmforge_requests_waiting", "Queued sequences")),
      kv_usage_(SingleGauge(*registry_, "rocmforge_kv_cache_usage_ratio", "Used KV blocks / total KV blocks")),
      kv_free_(BuildGauge().Name("rocmforge_kv_cache_blocks").Help("KV block counts").Register(*registry_).Add({{"state", "free"}})),
      kv_used_(BuildGauge().Name("rocmforge_kv_cache_blocks").Help("KV block counts").Register(*registry_).Add({{"state", "used"}})),
      kv_total_(BuildGauge().Name("rocmforge_kv_cache_blocks").Help("KV block counts").Register(*registry_).Add({{"state", "total"}})),
      prefix_hit_ratio_(SingleGauge(*registry_, "rocmforge_prefix_cache_hit_ratio", "Cached prompt tokens / prompt tokens since start")),
      prefix_hit_tokens_(SingleCounter(*registry_, "rocmforge_prefix_cache_hit_tokens_total", "Prompt tokens served from the prefix cache")),
      prompt_tokens_(SingleCounter(*registry_, "rocmforge_prompt_tokens_total", "Prompt tokens submitted")),
      generation_tokens_(SingleCounter(*registry_, "rocmforge_generation_tokens_total", "Tokens generated")),
      batch_size_(SingleHistogram(*registry_, "rocmforge_batch_size", "Sequences per engine step", BatchSizeBuckets())),
      batch_tokens_(SingleHistogram(*registry_, "rocmforge_batch_tokens", "Tokens per engine step (decode tokens + prompt tokens)", BatchTokenBuckets())),
      step_duration_(SingleHistogram(*registry_, "rocmforge_step_duration_seconds", "One engine step (forward + sample)", StepBuckets())),
      phase_plan_(StepPhaseCounter(*registry_, "plan")),
      phase_forward_(StepPhaseCounter(*registry_, "forward")),
      phase_sample_(StepPhaseCounter(*registry_, "sample")),
      phase_stream_(StepPhaseCounter(*registry_, "stream")),
      preemptions_(SingleCounter(*registry_, "rocmforge_preemptions_total", "Sequences preempted for KV space")),
      draining_(SingleGauge(*registry_, "rocmforge_worker_draining", "1 while draining")),
      memory_used_(BuildGauge().Name("rocmforge_device_memory_used_bytes").Help("Device memory in use (GPU memory on a GPU worker, process RSS on the CPU)").Register(*registry_)),
      memory_total_(BuildGauge().Name("rocmforge_device_memory_total_bytes").Help("Device memory size (GPU memory on a GPU worker, host RAM on the CPU)").Register(*registry_)),
      model_info_(BuildGauge().Name("rocmforge_model_info").Help("What this worker serves (always 1)").Register(*registry_)) {
  collectable_ = std::make_shared<SamplingCollectable>(this);
  // Every label value exists from the start, so dashboards see zeros, not gaps.
  for (const char* r : {"length", "stop", "eos", "cancelled", "error"}) requests_.Add({{"finish_reason", r}});
  for (const char* r : {"invalid_argument", "draining", "overloaded"}) rejected_.Add({{"reason", r}});
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::SetStatsSource(std::function<std::optional<EngineStats>()> source) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_source_ = std::move(source);
}

void WorkerMetrics::SetModelInfo(const std::string& model, const std::string& quantization,
                                 const std::string& device) {
  model_info_.Add({{"model", model}, {"quantization", quantization}, {"device", device}}).Set(1);
  std::lock_guard<std::mutex> lock(mu_);
  device_ = device;
}

void WorkerMetrics::RecordRejected(RejectReason reason) {
  const char* label = reason == RejectReason::kInvalidArgument ? "invalid_argument"
                      : reason == RejectReason::kDraining      ? "draining"
                                                               : "overloaded";
  rejected_.Add({{"reason", label}}).Increment();
}

void WorkerMetrics::AddGeneratedTokens(int64_t n) {
  if (n > 0) generation_tokens_.Increment(static_cast<double>(n));
}

void WorkerMetrics::SetDraining(bool draining) { draining_.Set(draining ? 1 : 0); }

void WorkerMetrics::OnStep(int32_t batch_sequences, int32_t batch_tokens, double step_seconds) {
  batch_size_.Observe(batch_sequences);
  batch_tokens_.Observe(batch_tokens);
  step_duration_.Observe(step_seconds);
}
void WorkerMetrics::OnStepPhases(const StepPhases& phases) {
  phase_plan_.Increment(phases.plan_seconds);
  phase_forward_.Increment(phases.forward_seconds);
  phase_sample_.Increment(phases.sample_seconds);
  phase_stream_.Increment(phases.stream_seconds);
}
void WorkerMetrics::OnPreemption() { preemptions_.Increment(); }
void WorkerMetrics::OnFirstToken(double queue_seconds, double ttft_seconds) {
  queue_time_.Observe(queue_seconds);
  ttft_.Observe(ttft_seconds);
}
void WorkerMetrics::OnToken(double inter_token_seconds) { inter_token_.Observe(inter_token_seconds); }
void WorkerMetrics::OnFinish(FinishReason reason, const Usage& usage) {
  if (reason == FinishReason::kNone) return;
  requests_.Add({{"finish_reason", FinishReasonName(reason)}}).Increment();
  duration_.Observe(usage.total_seconds);
}

void WorkerMetrics::Sample() {
  std::lock_guard<std::mutex> lock(mu_);
  // The engine reports its backend's device (GPU memory on a GPU worker); while
  // no engine is up (loading), the process's host memory is what it uses.
  auto set_memory = [this](double used, double total) {
    memory_used_.Add({{"device", device_}}).Set(used);
    memory_total_.Add({{"device", device_}}).Set(total);
  };
  const MemoryUsage host = HostMemoryUsage();
  set_memory(static_cast<double>(host.used_bytes), static_cast<double>(host.total_bytes));
  if (!stats_source_) return;
  const std::optional<EngineStats> stats = stats_source_();
  if (!stats) return;
  set_memory(static_cast<double>(stats->device_memory.used_bytes),
             static_cast<double>(stats->device_memory.total_bytes));
  running_.Set(stats->running);
  waiting_.Set(stats->waiting);
  const int32_t used = stats->total_kv_blocks - stats->free_kv_blocks;
  kv_free_.Set(stats->free_kv_blocks);
  kv_used_.Set(used);
  kv_total_.Set(stats->total_kv_blocks);
  kv_usage_.Set(stats->total_kv_blocks > 0 ? static_cast<double>(used) / stats->total_kv_blocks : 0);
  // The engine keeps totals since start; counters advance by the difference.
  if (stats->prefix_hit_tokens > seen_prefix_hit_tokens_) {
    prefix_hit_tokens_.Increment(static_cast<double>(stats->prefix_hit_tokens - seen_prefix_hit_tokens_));
    seen_prefix_hit_tokens_ = stats->prefix_hit_tokens;
  }
  if (stats->prompt_tokens > seen_prompt_tokens_) {
    prompt_tokens_.Increment(static_cast<double>(stats->prompt_tokens - seen_prompt_tokens_));
    seen_prompt_tokens_ = stats->prompt_tokens;
  }
  prefix_hit_ratio_.Set(stats->prompt_tokens > 0 ? static_cast<double>(stats->prefix_hit_tokens) /
                                                       static_cast<double>(stats->prompt_tokens)
                                                 : 0);
}

std::string WorkerMetrics::Serialize() {
  return prometheus::TextSerializer().Serialize(collectable_->Collect());
}

}  // namespace rocmforge::worker
