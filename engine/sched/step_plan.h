// What the scheduler decided for one engine step: plain data, no pointers.
#pragma once

#include <cstdint>
#include <vector>

namespace rocmforge::sched {

// One sequence's share of a step: compute the K/V (and hidden states) of its
// tokens [start, start + n_tokens).
struct ScheduledSeq {
  uint64_t seq_id = 0;
  int32_t start = 0;         // tokens already in the cache before this step
  int32_t n_tokens = 0;
  bool is_prefill = false;   // false: a decode step of a running sequence (1 token)
  bool samples_after = false;  // the chunk ends at the sequence's last token:
                               // its logits give the next token
};

struct Admission {
  uint64_t seq_id = 0;
  int32_t cached_tokens = 0;  // tokens served from the prefix cache
  bool first_time = true;     // false when re-admitted after a preemption
};

struct StepPlan {
  std::vector<ScheduledSeq> seqs;     // decodes first, then prefill chunks
  std::vector<uint64_t> preempted;    // moved back to the waiting queue this step
  std::vector<Admission> admitted;    // moved from waiting to running this step
  int32_t num_tokens = 0;             // sum of n_tokens

  bool empty() const { return seqs.empty(); }
};

}  // namespace rocmforge::sched
