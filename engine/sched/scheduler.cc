#include "engine/sched/scheduler.h"

#include <algorithm>

namespace rocmforge::sched {

int32_t PrefillCapWithDecodes(const SchedulerOptions& options, int32_t decodes) {
  const int32_t cap = options.max_prefill_tokens_with_decodes;
  if (cap <= 0) return 0;
  for (const int32_t size : options.step_token_sizes) {
    if (size >= decodes + cap) return size - decodes;
  }
  return cap;
}

int32_t PrefillTrimmedToStepSize(const SchedulerOptions& options, int32_t decodes, int32_t prefill) {
  const int32_t total = decodes + prefill;
  int32_t lower = 0;
  for (const int32_t size : options.step_token_sizes) {  // ascending
    if (size <= total) {
      lower = size;
      continue;
    }
    // total lies in (lower, size): cut back when the step would pay for the
    // next tile with less than half of it used, and prefill still advances.
    const bool just_past = total > lower && 2 * (total - lower) < size - lower;
    return just_past && lower > decodes ? lower - decodes : prefill;
  }
  return prefill;  // a size exactly, or past the last one
}

Scheduler::Scheduler(const SchedulerOptions& options, kv::KvCacheManager* kv)
    : options_(options), kv_(kv) {
  options_.max_batch_tokens = std::max(options_.max_batch_tokens, 1);
  options_.max_running = std::clamp(options_.max_running, 1, options_.max_batch_tokens);
  options_.max_prefill_tokens_with_decodes = std::max(options_.max_prefill_tokens_with_decodes, 0);
  std::sort(options_.step_token_sizes.begin(), options_.step_token_sizes.end());
}

bool Scheduler::Add(uint64_t id, std::vector<int32_t> tokens, int32_t priority) {
  if (tokens.empty() || seqs_.count(id) != 0) return false;
  Sequence s;
  s.id = id;
  s.priority = priority;
  s.arrival = next_arrival_++;
  s.tokens = std::move(tokens);
  waiting_.emplace(KeyOf(s), id);
  seqs_.emplace(id, std::move(s));
  return true;
}

void Scheduler::AppendToken(uint64_t id, int32_t token) {
  const auto it = seqs_.find(id);
  if (it != seqs_.end()) it->second.tokens.push_back(token);
}

void Scheduler::Remove(uint64_t id) {
  const auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  kv_->Close(id);
  if (it->second.running) {
    running_.erase(std::find(running_.begin(), running_.end(), id));
  } else {
    waiting_.erase(KeyOf(it->second));
  }
  seqs_.erase(it);
}

const Sequence* Scheduler::Find(uint64_t id) const {
  const auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : &it->second;
}

void Scheduler::InsertRunning(uint64_t id) {
  const QueueKey key = KeyOf(seqs_.at(id));
  const auto pos = std::upper_bound(running_.begin(), running_.end(), key,
                                    [this](const QueueKey& k, uint64_t other) {
                                      return k < KeyOf(seqs_.at(other));
                                    });
  running_.insert(pos, id);
}

void Scheduler::Preempt(uint64_t id, StepPlan& plan) {
  Sequence& s = seqs_.at(id);
  kv_->Close(id);
  s.num_computed = 0;
  s.running = false;
  ++s.preemptions;
  running_.erase(std::find(running_.begin(), running_.end(), id));
  waiting_.emplace(KeyOf(s), id);
  plan.preempted.push_back(id);
}

int32_t Scheduler::FitChunk(const Sequence& s, int32_t want) const {
  const int32_t room = kv_->MaxTokens(s.id) - s.num_computed;
  return std::max(0, std::min(want, room));
}

StepPlan Scheduler::Schedule() {
  StepPlan plan;
  while (true) {
    TrySchedule(plan);
    if (!plan.empty()) break;
    // Nothing fitted although running sequences have work: they hold every
    // block between them (e.g. several half-done prefills). Give the newest
    // one's blocks to the others and try again; with one sequence left it has
    // the whole pool.
    const bool stuck = std::any_of(running_.begin(), running_.end(), [this](uint64_t id) {
      return seqs_.at(id).remaining() > 0;
    });
    if (!stuck) break;
    Preempt(running_.back(), plan);
  }
  for (const ScheduledSeq& s : plan.seqs) plan.num_tokens += s.n_tokens;
  return plan;
}

bool Scheduler::TrySchedule(StepPlan& plan) {
  int32_t budget = options_.max_batch_tokens;

  // 1. Decodes of running sequences, oldest (highest priority) first. Out of
  //    blocks: preempt from the back of the running list, which is never a
  //    sequence already planned in this loop.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& s = seqs_.at(running_[i]);
    if (s.remaining() != 1) continue;
    bool preempted_self = false;
    while (!kv_->Reserve(s.id, s.num_computed + 1)) {
      const uint64_t victim = running_.back();
      Preempt(victim, plan);
      if (victim == s.id) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;  // s was the last running sequence
    plan.seqs.push_back({s.id, s.num_computed, 1, false, true});
    --budget;
  }
  const bool has_decodes = !plan.seqs.empty();
  if (has_decodes && options_.max_prefill_tokens_with_decodes > 0) {
    budget = std::min(budget, PrefillCapWithDecodes(options_, static_cast<int32_t>(plan.seqs.size())));
  }

  // 2. Prefill chunks of running sequences (long prompts continue here).
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& s = seqs_.at(running_[i]);
    if (s.remaining() < 2) continue;
    const int32_t chunk = FitChunk(s, std::min(s.remaining(), budget));
    if (chunk == 0) continue;
    kv_->Reserve(s.id, s.num_computed + chunk);
    plan.seqs.push_back({s.id, s.num_computed, chunk, true, chunk == s.remaining()});
    budget -= chunk;
  }

  // 3. Admissions, strictly in queue order. Not after a preemption in this
  //    step: the blocks just freed are needed by the running sequences.
  if (!plan.preempted.empty() && !running_.empty()) return !plan.empty();
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < options_.max_running) {
    const auto head = waiting_.begin();
    Sequence& s = seqs_.at(head->second);
    const int32_t cached = kv_->Open(s.id, s.tokens);
    s.num_computed = cached;
    const int32_t chunk = FitChunk(s, std::min(s.remaining(), budget));
    if (chunk == 0) {
      kv_->Close(s.id);
      s.num_computed = 0;
      break;
    }
    kv_->Reserve(s.id, s.num_computed + chunk);
    waiting_.erase(head);
    s.running = true;
    ++s.admissions;
    InsertRunning(s.id);
    plan.admitted.push_back({s.id, cached, s.admissions == 1});
    plan.seqs.push_back({s.id, s.num_computed, chunk, true, chunk == s.remaining()});
    budget -= chunk;
  }
  if (has_decodes && options_.trim_to_step_sizes) TrimPrefillToStepSize(plan);
  return !plan.empty();
}

void Scheduler::TrimPrefillToStepSize(StepPlan& plan) const {
  int32_t decodes = 0, prefill = 0, trimmable = 0;
  for (const ScheduledSeq& p : plan.seqs) {
    if (!p.is_prefill) {
      ++decodes;
      continue;
    }
    prefill += p.n_tokens;
    trimmable += p.n_tokens - 1;  // every chunk keeps a token: no admission is undone
  }
  int32_t excess = prefill - PrefillTrimmedToStepSize(options_, decodes, prefill);
  if (excess == 0 || excess > trimmable) return;
  // The newest chunks give their tokens back first. Blocks stay reserved for
  // them (the sequence needs them next step anyway).
  for (auto it = plan.seqs.rbegin(); it != plan.seqs.rend() && excess > 0; ++it) {
    if (!it->is_prefill) continue;
    const int32_t cut = std::min(excess, it->n_tokens - 1);
    if (cut == 0) continue;
    it->n_tokens -= cut;
    it->samples_after = false;
    excess -= cut;
  }
}

void Scheduler::Commit(const StepPlan& plan) {
  for (const ScheduledSeq& p : plan.seqs) {
    const auto it = seqs_.find(p.seq_id);
    if (it == seqs_.end()) continue;  // removed since Schedule()
    Sequence& s = it->second;
    s.num_computed = std::min<int32_t>(p.start + p.n_tokens, s.tokens.size());
    kv_->CommitComputed(s.id, s.tokens, s.num_computed);
  }
}

}  // namespace rocmforge::sched
