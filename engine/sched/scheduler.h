// Continuous-batching scheduler: decides, each step, which tokens of which
// sequences run; computes nothing (the engine runs the model on the plan).
//
// Policy (iteration-level batching, as in vLLM / Orca):
//  * Per step at most `max_batch_tokens` tokens and `max_running` sequences.
//  * Running decodes first, one token each, so a long prompt never stalls
//    them; then prefill chunks, first of running sequences still in prefill,
//    then of newly admitted ones, within the tokens left (chunked prefill).
//    In a step that carries decodes, prefill takes at most
//    `max_prefill_tokens_with_decodes` of them: a step's time grows with its
//    tokens, and every running stream waits for the whole step, so this bounds
//    inter-token latency while an idle engine still prefills at full budget.
//    Where the backend's step time rises in steps (`step_token_sizes`), the
//    cap is raised so the step fills the size it already costs: 32 decodes
//    with a cap of 64 make a 96-token step, which costs what 128 tokens cost
//    on the GPU, so prefill takes 96. When too little prefill is waiting to
//    fill the size, a step that would end just past a smaller size is cut
//    back to it (PrefillTrimmedToStepSize); the cut tokens run next step.
//  * Admission FCFS within priority (higher first); the queue head is never
//    overtaken, so a big request cannot starve.
//  * KV blocks are reserved here for every planned token. When a running
//    decode finds none, the newest running sequence (lowest priority, latest
//    arrival) is preempted by recompute: its blocks are freed and it goes back
//    to the waiting queue keeping its original arrival (so it is first among
//    its priority), with every token it has (prompt + generated) left to
//    recompute. Nothing is lost or duplicated; its full blocks usually stay in
//    the prefix cache, making the recompute cheap.
//
// A step: plan = Schedule(); run the model; Commit(plan); then for each
// sequence that sampled, AppendToken() or Remove() it. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/sched/step_plan.h"

namespace rocmforge::sched {

struct SchedulerOptions {
  int32_t max_batch_tokens = 512;
  int32_t max_running = 64;  // clamped to max_batch_tokens (each decode needs a token)
  int32_t max_prefill_tokens_with_decodes = 0;  // 0: no cap beyond max_batch_tokens
  std::vector<int32_t> step_token_sizes = {};  // ascending; Backend::StepTokenSizes()
  bool trim_to_step_sizes = true;  // cut steps just past a size back to it (PrefillTrimmedToStepSize)
};

// The most prefill tokens a step that carries `decodes` decode tokens may take
// (before the token budget): max_prefill_tokens_with_decodes, raised to fill the
// smallest step size >= decodes + that cap; 0 means no cap.
int32_t PrefillCapWithDecodes(const SchedulerOptions& options, int32_t decodes);

// How many of the `prefill` tokens a step with `decodes` decode tokens keeps so
// that it does not end just past a step size: when decodes + prefill lies in
// the first half of the span between two sizes, the step is cut back to the
// lower size (a 72-token step of 27 decodes runs as 64; the next size costs a
// whole new GEMM tile for 8 tokens), provided some prefill remains. Otherwise,
// and without sizes, all of `prefill`.
int32_t PrefillTrimmedToStepSize(const SchedulerOptions& options, int32_t decodes, int32_t prefill);

struct Sequence {
  uint64_t id = 0;
  int32_t priority = 0;
  uint64_t arrival = 0;
  std::vector<int32_t> tokens;  // prompt + generated so far
  int32_t num_computed = 0;     // leading tokens whose K/V is in the cache
  bool running = false;
  int32_t admissions = 0;       // 1 + times re-admitted after preemption
  int32_t preemptions = 0;

  int32_t remaining() const { return static_cast<int32_t>(tokens.size()) - num_computed; }
};

class Scheduler {
 public:
  Scheduler(const SchedulerOptions& options, kv::KvCacheManager* kv);

  // Queues a new sequence (`tokens` non-empty). Returns false for a duplicate id.
  bool Add(uint64_t id, std::vector<int32_t> tokens, int32_t priority = 0);
  // Appends the token sampled for `id` after a step in which it sampled.
  void AppendToken(uint64_t id, int32_t token);
  // Forgets a finished or cancelled sequence (queued or running) and frees its
  // blocks at once. Unknown ids are ignored.
  void Remove(uint64_t id);

  StepPlan Schedule();
  // Records that the plan ran: its tokens are computed; full blocks become
  // reusable through the prefix cache.
  void Commit(const StepPlan& plan);

  const Sequence* Find(uint64_t id) const;
  const std::vector<int32_t>& block_table(uint64_t id) const { return kv_->block_table(id); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  const std::vector<uint64_t>& running() const { return running_; }
  const SchedulerOptions& options() const { return options_; }
  kv::KvCacheManager& kv() { return *kv_; }

 private:
  using QueueKey = std::pair<int64_t, uint64_t>;  // (-priority, arrival): begin() is next
  static QueueKey KeyOf(const Sequence& s) { return {-static_cast<int64_t>(s.priority), s.arrival}; }

  bool TrySchedule(StepPlan& plan);
  // Cuts the plan's newest prefill chunks back by what PrefillTrimmedToStepSize
  // says the step should not take (only when every chunk keeps a token).
  void TrimPrefillToStepSize(StepPlan& plan) const;
  void Preempt(uint64_t id, StepPlan& plan);
  void InsertRunning(uint64_t id);
  // Largest chunk <= want that fits in the blocks available to `s`.
  int32_t FitChunk(const Sequence& s, int32_t want) const;

  SchedulerOptions options_;
  kv::KvCacheManager* kv_;
  uint64_t next_arrival_ = 0;
  std::unordered_map<uint64_t, Sequence> seqs_;
  std::vector<uint64_t> running_;          // sorted by KeyOf: back = preemption victim
  std::map<QueueKey, uint64_t> waiting_;
};

}  // namespace rocmforge::sched
