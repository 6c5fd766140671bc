// EngineImpl: Submit/Cancel/Stats from any thread, and the step loop on the
// engine's own thread (schedule -> build the StepBatch -> Model::Forward ->
// Backend::Sample -> stream tokens -> finish and free).
#include <algorithm>
#include <span>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "engine/engine_internal.h"

namespace rocmforge {
namespace {

// How long the idle loop sleeps before refreshing tokens_per_second.
constexpr auto kIdleRefresh = std::chrono::milliseconds(500);
// Window of the tokens_per_second statistic.
constexpr double kRateWindowSeconds = 5.0;

}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options, Parts parts, EngineObserver* observer)
    : options_(options),
      observer_(observer != nullptr ? observer : &null_observer_),
      file_(std::move(parts.file)),
      backend_(std::move(parts.backend)),
      tokenizer_(std::move(parts.tokenizer)),
      model_(std::move(parts.model)),
      context_length_(parts.context_length),
      quantization_(QuantizationName(*file_)),
      kv_(parts.kv_blocks, options.kv_block_size, options.prefix_cache),
      sched_(sched::SchedulerOptions{options.max_batch_tokens, options.max_running,
                                     options.max_prefill_tokens_with_decodes >= 0
                                         ? options.max_prefill_tokens_with_decodes
                                         : backend_->DefaultPrefillCapWithDecodes(),
                                     options.fill_step_sizes ? backend_->StepTokenSizes()
                                                             : std::vector<int32_t>{},
                                     options.trim_step_sizes},
             &kv_) {
  stats_.total_kv_blocks = kv_.num_blocks();
  stats_.free_kv_blocks = kv_.num_free_blocks();
  thread_ = std::thread([this] { Loop(); });
}

EngineImpl::~EngineImpl() {
  Shutdown();
  if (thread_.joinable()) thread_.join();  // Shutdown() from a sink did not join
}

std::string EngineImpl::device_name() const {
  const std::string name(backend_->name());
  return name == "cpu" ? name : absl::StrCat(name, ":0");
}

absl::StatusOr<uint64_t> EngineImpl::Submit(GenerationRequest request, EventSink sink) {
  if (!sink) return absl::InvalidArgumentError("Submit needs an event sink");
  RF_RETURN_IF_ERROR(ValidateGenerationRequest(request, context_length_, model_->config().n_vocab));
  auto a = std::make_unique<Active>();
  a->request = std::move(request);
  a->sink = std::move(sink);
  a->submitted = Clock::now();
  a->stream = std::make_unique<TokenStream>(*tokenizer_, a->request.stopping, context_length_);
  const auto& prompt = a->request.prompt;
  const int32_t resumed = a->request.resume_generated;
  a->stream->Replay(std::span<const TokenId>(prompt).subspan(prompt.size() - resumed));
  a->usage.prompt_tokens = static_cast<int32_t>(prompt.size()) - resumed;
  a->usage.seed = a->request.sampling.seed;

  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return absl::UnavailableError("the engine is shutting down; no new requests");
  const uint64_t id = next_id_++;
  a->id = id;
  stats_.prompt_tokens += a->usage.prompt_tokens;
  inbox_.push_back(std::move(a));
  wake_.notify_one();
  return id;
}

void EngineImpl::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancels_.push_back(request_id);
  wake_.notify_one();
}

EngineStats EngineImpl::Stats() const {
  // Asked before taking mu_, which the engine loop needs every step: a device
  // query must not stall it (thread-safe by the Backend contract).
  const MemoryUsage memory = backend_->DeviceMemoryUsage();
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.waiting += static_cast<int32_t>(inbox_.size());
  s.device_memory = memory;
  return s;
}

void EngineImpl::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      wake_.notify_one();
    }
    // From a sink (on the loop thread) the loop ends after this step; the
    // destructor cannot run there, as the sink is owned by the loop.
    if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
  });
}

void EngineImpl::TakeInbox(std::vector<std::unique_ptr<Active>>* added,
                           std::vector<uint64_t>* cancels, bool* stopping) {
  std::unique_lock<std::mutex> lock(mu_);
  // active_ is loop-thread state; reading it here is safe (same thread).
  wake_.wait_for(lock, kIdleRefresh,
                 [&] { return stop_ || !inbox_.empty() || !cancels_.empty() || !active_.empty(); });
  added->swap(inbox_);
  cancels->swap(cancels_);
  *stopping = stop_;
}

void EngineImpl::Loop() {
  std::vector<std::unique_ptr<Active>> added;
  std::vector<uint64_t> cancels;
  while (true) {
    bool stopping = false;
    added.clear();
    cancels.clear();
    if (active_.empty()) DeliverEvents();  // TakeInbox may wait
    TakeInbox(&added, &cancels, &stopping);
    for (auto& a : added) {
      const uint64_t id = a->id;
      sched_.Add(id, a->request.prompt, a->request.priority);
      active_.emplace(id, std::move(a));
    }
    // Cancellation frees the blocks here, before the next step is planned.
    for (uint64_t id : cancels) {
      const auto it = active_.find(id);
      if (it != active_.end()) Finish(*it->second, FinishReason::kCancelled, "");
    }
    if (stopping) {
      DeliverEvents();
      std::vector<uint64_t> ids;
      for (const auto& [id, a] : active_) ids.push_back(id);
      for (uint64_t id : ids) Finish(*active_.at(id), FinishReason::kCancelled, "");
      PublishStats(0, 0);
      return;
    }
    if (active_.empty()) {
      PublishStats(0, 0);
      continue;
    }
    RunStep();
  }
}

void EngineImpl::RunStep() {
  const Clock::time_point t0 = Clock::now();
  const sched::StepPlan plan = sched_.Schedule();
  for (size_t i = 0; i < plan.preempted.size(); ++i) observer_->OnPreemption();
  uint64_t hit_tokens = 0;
  for (const sched::Admission& adm : plan.admitted) {
    if (!adm.first_time) continue;
    Active& a = *active_.at(adm.seq_id);
    a.admitted = true;
    a.usage.cached_prompt_tokens = adm.cached_tokens;
    a.usage.queue_seconds = Seconds(a.submitted, t0);
    hit_tokens += adm.cached_tokens;
    observer_->OnPrefixLookup(static_cast<int32_t>(a.request.prompt.size()), adm.cached_tokens);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.preemptions += plan.preempted.size();
    stats_.prefix_hit_tokens += hit_tokens;
  }
  if (plan.empty()) {
    DeliverEvents();
    // Only possible when the queue head cannot fit an empty pool, which
    // SizeKvPool rules out; fail rather than spin.
    if (sched_.num_running() == 0 && sched_.num_waiting() > 0) {
      std::vector<uint64_t> ids;
      for (const auto& [id, a] : active_) ids.push_back(id);
      FailAll(ids, "the KV cache cannot hold this request");
    }
    PublishStats(0, 0);
    return;
  }

  // Build the flat batch in plan order.
  StepBatch batch;
  batch.tokens.reserve(plan.num_tokens);
  batch.positions.reserve(plan.num_tokens);
  batch.slots.reserve(plan.num_tokens);
  std::vector<uint64_t> sampling_ids;
  std::vector<uint64_t> plan_ids;
  const int32_t bs = kv_.block_size();
  for (const sched::ScheduledSeq& p : plan.seqs) {
    const sched::Sequence& s = *sched_.Find(p.seq_id);
    const std::vector<int32_t>& table = sched_.block_table(p.seq_id);
    BatchSeq bseq;
    bseq.token_start = batch.n_tokens();
    bseq.n_tokens = p.n_tokens;
    bseq.kv_len = p.start + p.n_tokens;
    bseq.block_table.assign(table.begin(), table.begin() + (bseq.kv_len + bs - 1) / bs);
    for (int32_t pos = p.start; pos < p.start + p.n_tokens; ++pos) {
      batch.tokens.push_back(s.tokens[pos]);
      batch.positions.push_back(pos);
      batch.slots.push_back(table[pos / bs] * bs + pos % bs);
    }
    if (p.samples_after) {
      batch.logit_rows.push_back(bseq.token_start + p.n_tokens - 1);
      sampling_ids.push_back(p.seq_id);
    }
    batch.seqs.push_back(std::move(bseq));
    plan_ids.push_back(p.seq_id);
  }

  StepPhases phases;
  Clock::time_point mark = t0;
  auto lap = [this, &mark](double* phase) {
    const Clock::time_point now = Clock::now();
    *phase = Seconds(mark, now);
    mark = now;
  };
  lap(&phases.plan_seconds);
  const absl::StatusOr<const float*> logits = model_->Forward(batch);
  DeliverEvents();  // the last step's tokens, while the device runs this one
  lap(&phases.forward_seconds);
  if (!logits.ok()) {
    FailAll(plan_ids, absl::StrCat("model forward pass failed: ", logits.status().message()));
    return;
  }
  std::vector<SampleRequest> requests(sampling_ids.size());
  for (size_t r = 0; r < sampling_ids.size(); ++r) {
    const Active& a = *active_.at(sampling_ids[r]);
    requests[r].params = a.request.sampling;
    requests[r].step = static_cast<uint64_t>(a.stream->generated());
    if (a.request.sampling.repetition_penalty != 1.0f) {
      const std::vector<int32_t>& tokens = sched_.Find(sampling_ids[r])->tokens;
      const size_t window = std::min<size_t>(tokens.size(), a.request.sampling.repetition_window);
      requests[r].recent.assign(tokens.end() - window, tokens.end());
    }
  }
  std::vector<SampleResult> results(sampling_ids.size());
  if (!requests.empty()) {
    const absl::Status st = backend_->Sample(*logits, static_cast<int>(requests.size()),
                                             model_->config().n_vocab, requests.data(), results.data());
    if (!st.ok()) {
      FailAll(plan_ids, absl::StrCat("sampling failed: ", st.message()));
      return;
    }
  }
  lap(&phases.sample_seconds);
  sched_.Commit(plan);
  for (size_t r = 0; r < sampling_ids.size(); ++r) OnSampled(*active_.at(sampling_ids[r]), results[r]);
  lap(&phases.stream_seconds);

  const double secs = Seconds(t0, mark);
  observer_->OnStep(static_cast<int32_t>(plan.seqs.size()), plan.num_tokens, secs);
  observer_->OnStepPhases(phases);
  PublishStats(static_cast<int32_t>(sampling_ids.size()), secs);
}

void EngineImpl::OnSampled(Active& a, const SampleResult& r) {
  const Clock::time_point now = Clock::now();
  const int32_t length = static_cast<int32_t>(sched_.Find(a.id)->tokens.size()) + 1;
  TokenStream::Output out = a.stream->Push(r.token, length);
  if (!a.has_token) {
    a.has_token = true;
    a.usage.time_to_first_token_seconds = Seconds(a.submitted, now);
    observer_->OnFirstToken(a.usage.queue_seconds, a.usage.time_to_first_token_seconds);
  } else {
    observer_->OnToken(Seconds(a.last_token, now));
  }
  a.last_token = now;

  TokenEvent ev;
  ev.token_ids.push_back(r.token);
  ev.text = std::move(out.text);
  if (a.request.sampling.logprobs > 0) {
    TokenLogprobs lp;
    lp.logprob = r.logprob;
    lp.top.assign(r.top_logprobs.begin(), r.top_logprobs.end());
    ev.logprobs.push_back(std::move(lp));
  }
  if (out.finish == FinishReason::kNone) {
    sched_.AppendToken(a.id, r.token);
    undelivered_.push_back({a.sink, std::move(ev)});
    return;
  }
  ev.finished = true;
  ev.finish_reason = out.finish;
  a.usage.generated_tokens = a.stream->generated();
  a.usage.total_seconds = Seconds(a.submitted, now);
  ev.usage = a.usage;
  const uint64_t id = a.id;
  sched_.Remove(id);
  observer_->OnFinish(out.finish, ev.usage);
  undelivered_.push_back({std::move(a.sink), std::move(ev)});
  active_.erase(id);
}

void EngineImpl::DeliverEvents() {
  // A sink may not re-enter the loop's state, but a vector swapped out first
  // stays valid whatever it does.
  std::vector<UndeliveredEvent> events;
  events.swap(undelivered_);
  for (UndeliveredEvent& e : events) e.sink(std::move(e.event));
}

void EngineImpl::Finish(Active& a, FinishReason reason, std::string text, std::string error) {
  DeliverEvents();  // the sequence's earlier tokens before its final event
  TokenEvent ev;
  ev.text = std::move(text);
  ev.finished = true;
  ev.finish_reason = reason;
  ev.error = std::move(error);
  a.usage.generated_tokens = a.stream->generated();
  a.usage.total_seconds = Seconds(a.submitted, Clock::now());
  if (!a.admitted) a.usage.queue_seconds = a.usage.total_seconds;
  ev.usage = a.usage;
  const uint64_t id = a.id;
  sched_.Remove(id);  // frees its blocks now
  observer_->OnFinish(reason, ev.usage);
  a.sink(std::move(ev));
  active_.erase(id);
}

void EngineImpl::FailAll(const std::vector<uint64_t>& ids, const std::string& error) {
  for (uint64_t id : ids) {
    const auto it = active_.find(id);
    if (it != active_.end()) Finish(*it->second, FinishReason::kError, "", error);
  }
}

void EngineImpl::PublishStats(int32_t step_generated, double step_seconds) {
  const Clock::time_point now = Clock::now();
  if (step_generated > 0) {
    recent_generated_.emplace_back(
        now - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(step_seconds)),
        step_generated);
  }
  while (!recent_generated_.empty() && Seconds(recent_generated_.front().first, now) > kRateWindowSeconds) {
    recent_generated_.pop_front();
  }
  double rate = 0;
  if (!recent_generated_.empty()) {
    int64_t tokens = 0;
    for (const auto& [t, n] : recent_generated_) tokens += n;
    rate = tokens / std::max(Seconds(recent_generated_.front().first, now), 1e-6);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.running = sched_.num_running();
  stats_.waiting = sched_.num_waiting();
  stats_.free_kv_blocks = kv_.num_free_blocks();
  stats_.total_kv_blocks = kv_.num_blocks();
  stats_.tokens_per_second = rate;
}

}  // namespace rocmforge
