// The scheduler driven by a fake model loop: no model, but a shadow KV cache
// that records which token each slot holds, so every plan is checked for what
// the real model needs (block tables covering the tokens, cached positions
// holding exactly this sequence's tokens, budgets) and every sequence for
// getting exactly its tokens, none lost or duplicated, through preemption.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/sched/scheduler.h"
#include "gtest/gtest.h"

namespace rocmforge::sched {
namespace {

// The token a sequence generates at generated-index g: any fixed function
// works; a lost or repeated token shows up as a mismatch.
int32_t FakeToken(uint64_t id, int32_t g) { return static_cast<int32_t>((id * 7919 + g * 104729) % 30000); }

struct Job {
  std::vector<int32_t> prompt;
  int32_t max_new = 0;
  int32_t priority = 0;
};

class Harness {
 public:
  Harness(SchedulerOptions opt, int32_t blocks, int32_t block_size, bool prefix_cache = true)
      : opt_(opt), kv_(blocks, block_size, prefix_cache), sched_(opt, &kv_),
        slots_(static_cast<size_t>(blocks) * block_size, -1) {}

  void Add(uint64_t id, const Job& job) {
    ASSERT_TRUE(sched_.Add(id, job.prompt, job.priority));
    jobs_[id] = job;
  }

  // Runs one step; returns the plan. Checks every invariant on the way.
  StepPlan Step() {
    StepPlan plan = sched_.Schedule();
    ++steps_;
    Check(plan);
    sched_.Commit(plan);
    for (const ScheduledSeq& p : plan.seqs) {
      if (!p.samples_after) continue;
      const Sequence* s = sched_.Find(p.seq_id);
      const Job& job = jobs_[p.seq_id];
      const int32_t g = static_cast<int32_t>(s->tokens.size() - job.prompt.size());
      if (g + 1 >= job.max_new) {
        finished_[p.seq_id] = s->tokens;
        finished_[p.seq_id].push_back(FakeToken(p.seq_id, g));
        sched_.Remove(p.seq_id);
      } else {
        sched_.AppendToken(p.seq_id, FakeToken(p.seq_id, g));
      }
    }
    preemptions_ += static_cast<int>(plan.preempted.size());
    for (const Admission& a : plan.admitted) {
      all_admissions_.push_back(a.seq_id);
      if (a.first_time) admission_order_.push_back(a.seq_id);
      cached_[a.seq_id] += a.cached_tokens;
    }
    return plan;
  }

  void RunToCompletion(int max_steps = 100000) {
    while ((sched_.num_running() > 0 || sched_.num_waiting() > 0) && steps_ < max_steps) Step();
    ASSERT_EQ(sched_.num_running() + sched_.num_waiting(), 0) << "did not finish";
    EXPECT_EQ(kv_.num_free_blocks(), kv_.num_blocks()) << "blocks leaked";
  }

  void ExpectAllCorrect() {
    ASSERT_EQ(finished_.size(), jobs_.size());
    for (const auto& [id, job] : jobs_) {
      std::vector<int32_t> want = job.prompt;
      for (int32_t g = 0; g < job.max_new; ++g) want.push_back(FakeToken(id, g));
      EXPECT_EQ(finished_[id], want) << "sequence " << id;
    }
  }

  Scheduler& sched() { return sched_; }
  kv::KvCacheManager& kv() { return kv_; }
  int preemptions() const { return preemptions_; }
  int steps() const { return steps_; }
  const std::vector<uint64_t>& admission_order() const { return admission_order_; }
  const std::vector<uint64_t>& all_admissions() const { return all_admissions_; }
  int32_t cached(uint64_t id) { return cached_[id]; }

 private:
  void Check(const StepPlan& plan) {
    ASSERT_LE(plan.num_tokens, opt_.max_batch_tokens);
    ASSERT_LE(sched_.num_running(), opt_.max_running);
    int32_t sum = 0;
    bool seen_prefill = false;
    std::set<uint64_t> ids;
    for (const ScheduledSeq& p : plan.seqs) {
      ASSERT_TRUE(ids.insert(p.seq_id).second) << "sequence twice in one step";
      ASSERT_GT(p.n_tokens, 0);
      sum += p.n_tokens;
      if (p.is_prefill) {
        seen_prefill = true;
      } else {
        ASSERT_FALSE(seen_prefill) << "decodes come first";
        ASSERT_EQ(p.n_tokens, 1);
      }
      const Sequence* s = sched_.Find(p.seq_id);
      ASSERT_NE(s, nullptr);
      ASSERT_TRUE(s->running);
      ASSERT_EQ(p.start, s->num_computed);
      ASSERT_EQ(p.samples_after, p.start + p.n_tokens == static_cast<int32_t>(s->tokens.size()));
      const auto& table = sched_.block_table(p.seq_id);
      const int32_t bs = kv_.block_size();
      ASSERT_GE(static_cast<int32_t>(table.size()) * bs, p.start + p.n_tokens) << "blocks missing";
      // The context this step attends to must be this sequence's own tokens.
      for (int32_t pos = 0; pos < p.start; ++pos) {
        const int32_t slot = table[pos / bs] * bs + pos % bs;
        ASSERT_EQ(slots_[slot], s->tokens[pos])
            << "seq " << p.seq_id << " position " << pos << " reads another sequence's K/V";
      }
      // Never write into a block another sequence holds.
      for (int32_t pos = p.start; pos < p.start + p.n_tokens; ++pos) {
        ASSERT_EQ(kv_.ref_count(table[pos / bs]), 1) << "write into a shared block";
      }
    }
    ASSERT_EQ(sum, plan.num_tokens);
    if (opt_.max_prefill_tokens_with_decodes > 0) {
      int32_t decodes = 0, prefill = 0;
      for (const ScheduledSeq& p : plan.seqs) (p.is_prefill ? prefill : decodes) += p.n_tokens;
      if (decodes > 0) {
        // The cap, or what fills the step size the capped step falls in.
        int32_t cap = opt_.max_prefill_tokens_with_decodes;
        const int32_t capped = decodes + cap;
        for (int32_t size : opt_.step_token_sizes) {
          if (size >= capped) {
            cap = size - decodes;
            break;
          }
        }
        ASSERT_LE(prefill, cap) << "prefill cap";
      }
    }
    // "Run the model": store the step's tokens.
    for (const ScheduledSeq& p : plan.seqs) {
      const Sequence* s = sched_.Find(p.seq_id);
      const auto& table = sched_.block_table(p.seq_id);
      const int32_t bs = kv_.block_size();
      for (int32_t pos = p.start; pos < p.start + p.n_tokens; ++pos) {
        slots_[table[pos / bs] * bs + pos % bs] = s->tokens[pos];
      }
    }
  }

  SchedulerOptions opt_;
  kv::KvCacheManager kv_;
  Scheduler sched_;
  std::vector<int32_t> slots_;
  std::map<uint64_t, Job> jobs_;
  std::map<uint64_t, std::vector<int32_t>> finished_;
  std::map<uint64_t, int32_t> cached_;
  std::vector<uint64_t> admission_order_;
  std::vector<uint64_t> all_admissions_;
  int preemptions_ = 0;
  int steps_ = 0;
};

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n) {
  std::vector<int32_t> p(n);
  for (auto& t : p) t = static_cast<int32_t>(rng() % 30000);
  return p;
}

TEST(Scheduler, ChunkedPrefillSplitsALongPromptWithinTheBudget) {
  SchedulerOptions opt{.max_batch_tokens = 64, .max_running = 8};
  Harness h(opt, 200, 16);
  std::mt19937 rng(1);
  h.Add(1, {RandomPrompt(rng, 1000), 3, 0});
  int prefill_steps = 0;
  while (true) {
    const StepPlan plan = h.Step();
    ASSERT_EQ(plan.seqs.size(), 1u);
    if (!plan.seqs[0].is_prefill) break;
    ++prefill_steps;
    EXPECT_EQ(plan.seqs[0].start, 64 * (prefill_steps - 1));
    EXPECT_EQ(plan.seqs[0].samples_after, plan.seqs[0].start + plan.seqs[0].n_tokens == 1000);
  }
  EXPECT_EQ(prefill_steps, (1000 + 63) / 64);
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, RunningDecodesAreNeverStalledByALongPrompt) {
  SchedulerOptions opt{.max_batch_tokens = 50, .max_running = 8};
  Harness h(opt, 400, 16);
  std::mt19937 rng(2);
  for (uint64_t id = 1; id <= 3; ++id) h.Add(id, {RandomPrompt(rng, 7 + id), 200, 0});
  h.Step();  // admits and prefills all three (8+9+10 tokens)
  h.Add(10, {RandomPrompt(rng, 1500), 2, 0});
  for (int step = 0; step < 30; ++step) {  // 30 * 47 < 1500: still prefilling
    const StepPlan plan = h.Step();
    std::set<uint64_t> decoded;
    for (const auto& p : plan.seqs) {
      if (!p.is_prefill) decoded.insert(p.seq_id);
    }
    EXPECT_EQ(decoded, (std::set<uint64_t>{1, 2, 3})) << "step " << step;
    // The rest of the budget goes to the long prompt.
    EXPECT_EQ(plan.num_tokens, 50);
  }
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, PrefillIsCappedOnlyInStepsThatCarryDecodes) {
  SchedulerOptions opt{.max_batch_tokens = 100, .max_running = 8, .max_prefill_tokens_with_decodes = 12};
  Harness h(opt, 400, 16);
  std::mt19937 rng(5);
  // Idle engine: the first prompt prefills with the whole budget.
  h.Add(1, {RandomPrompt(rng, 150), 40, 0});
  StepPlan plan = h.Step();
  EXPECT_EQ(plan.num_tokens, 100);
  plan = h.Step();  // the remaining 50 prompt tokens; sequence 1 samples after it
  EXPECT_EQ(plan.num_tokens, 50);
  // Now sequence 1 decodes: a new long prompt advances 12 tokens a step.
  h.Add(2, {RandomPrompt(rng, 60), 3, 0});
  for (int step = 0; step < 5; ++step) {
    plan = h.Step();
    int32_t prefill = 0, decodes = 0;
    for (const auto& p : plan.seqs) (p.is_prefill ? prefill : decodes) += p.n_tokens;
    EXPECT_EQ(decodes, 1) << "step " << step;
    EXPECT_EQ(prefill, 12) << "step " << step;
  }
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, PrefillCapWithDecodesFillsTheStepSize) {
  SchedulerOptions opt{.max_batch_tokens = 512, .max_running = 64, .max_prefill_tokens_with_decodes = 64};
  EXPECT_EQ(PrefillCapWithDecodes(opt, 32), 64);  // no sizes: the cap as given
  opt.step_token_sizes = {8, 16, 32, 64, 128};
  EXPECT_EQ(PrefillCapWithDecodes(opt, 32), 96);   // 96 tokens cost what 128 cost
  EXPECT_EQ(PrefillCapWithDecodes(opt, 1), 127);
  EXPECT_EQ(PrefillCapWithDecodes(opt, 64), 64);   // exactly 128
  EXPECT_EQ(PrefillCapWithDecodes(opt, 65), 64);   // past the last size: the cap
  opt.max_prefill_tokens_with_decodes = 20;
  EXPECT_EQ(PrefillCapWithDecodes(opt, 10), 22);   // 30 -> 32
  EXPECT_EQ(PrefillCapWithDecodes(opt, 44), 20);   // 64 exactly
  opt.max_prefill_tokens_with_decodes = 0;
  EXPECT_EQ(PrefillCapWithDecodes(opt, 32), 0);    // no cap stays no cap
}

// A step with decodes takes the prefill that fills its step size, never more
// than the token budget, and results stay exact.
TEST(Scheduler, StepSizesRaiseThePrefillCap) {
  SchedulerOptions opt{.max_batch_tokens = 120, .max_running = 8, .max_prefill_tokens_with_decodes = 12,
                       .step_token_sizes = {16, 32, 64}};
  Harness h(opt, 400, 16);
  std::mt19937 rng(6);
  h.Add(1, {RandomPrompt(rng, 20), 60, 0});
  h.Add(2, {RandomPrompt(rng, 20), 60, 0});
  StepPlan plan = h.Step();  // both prompts at once (idle engine)
  EXPECT_EQ(plan.num_tokens, 40);
  h.Add(3, {RandomPrompt(rng, 300), 3, 0});
  for (int step = 0; step < 4; ++step) {
    plan = h.Step();
    int32_t prefill = 0, decodes = 0;
    for (const auto& p : plan.seqs) (p.is_prefill ? prefill : decodes) += p.n_tokens;
    EXPECT_EQ(decodes, 2) << "step " << step;
    EXPECT_EQ(prefill, 14) << "step " << step;  // 2 + 12 = 14 -> fills 16
  }
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, PrefillTrimmedToStepSizeCutsStepsJustPastASize) {
  SchedulerOptions opt{.max_batch_tokens = 512, .max_running = 64, .max_prefill_tokens_with_decodes = 64};
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 45), 45);  // no sizes: untouched
  opt.step_token_sizes = {8, 16, 32, 64, 96, 128};
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 45), 37);    // 72 -> 64
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 60), 60);    // 87: past half of 64..96, keep
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 101), 101);  // 128 exactly
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 10), 5);     // 37 -> 32
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 27, 3), 3);      // 30: past half of 16..32, keep
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 40, 30), 24);    // 70 -> 64
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 64, 3), 3);      // 64 would leave no prefill
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 90, 10), 6);     // 100 -> 96
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 100, 200), 200); // past the last size
  EXPECT_EQ(PrefillTrimmedToStepSize(opt, 3, 0), 0);
}

// With the GPU's step sizes, a mixed load (decodes plus prompts arriving over
// time) never runs a trimmable step just past a size, and every sequence still
// gets exactly its tokens.
TEST(Scheduler, StepsEndOnStepSizesAndResultsStayExact) {
  SchedulerOptions opt{.max_batch_tokens = 512, .max_running = 32, .max_prefill_tokens_with_decodes = 64,
                       .step_token_sizes = {8, 16, 32, 64, 96, 128}};
  Harness h(opt, 4000, 16);
  std::mt19937 rng(11);
  uint64_t next_id = 1;
  int steps_on_a_size = 0;  // with decodes and prefill
  for (int step = 0; step < 400; ++step) {
    // Short prompts, one new request a step at most: prefill is scarce, so
    // steps often have less than their size's worth of it.
    if (h.sched().num_running() + h.sched().num_waiting() < 28 && next_id <= 150) {
      h.Add(next_id++, {RandomPrompt(rng, 8 + static_cast<int>(rng() % 60)),
                        20 + static_cast<int32_t>(rng() % 60), 0});
    }
    const StepPlan plan = h.Step();
    int32_t decodes = 0, prefill = 0, trimmable = 0;
    for (const auto& p : plan.seqs) {
      if (p.is_prefill) {
        prefill += p.n_tokens;
        trimmable += p.n_tokens - 1;
      } else {
        ++decodes;
      }
    }
    if (decodes == 0 || prefill == 0) continue;
    const int32_t keep = PrefillTrimmedToStepSize(opt, decodes, prefill);
    // Either nothing to cut, or the cut could not keep a token in every chunk.
    EXPECT_TRUE(keep == prefill || prefill - keep > trimmable) << "step " << step;
    for (int32_t size : opt.step_token_sizes) steps_on_a_size += plan.num_tokens == size && size > decodes;
  }
  EXPECT_GT(steps_on_a_size, 0);
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, AdmissionIsFcfsWithinPriorityHigherFirst) {
  SchedulerOptions opt{.max_batch_tokens = 256, .max_running = 1};
  Harness h(opt, 100, 8);
  std::mt19937 rng(3);
  // Arrival order 1..8 with mixed priorities while seq 100 occupies the slot.
  h.Add(100, {RandomPrompt(rng, 5), 4, 0});
  h.Step();
  const int32_t prio[] = {0, 2, 1, 2, 0, 1, 2, 0};
  for (uint64_t id = 1; id <= 8; ++id) h.Add(id, {RandomPrompt(rng, 3 + id), 2, prio[id - 1]});
  h.RunToCompletion();
  h.ExpectAllCorrect();
  EXPECT_EQ(h.admission_order(), (std::vector<uint64_t>{100, 2, 4, 7, 3, 6, 1, 5, 8}));
}

TEST(Scheduler, TinyPoolPreemptsByRecomputeAndEverySequenceCompletes) {
  for (bool prefix : {false, true}) {
    SchedulerOptions opt{.max_batch_tokens = 40, .max_running = 16};
    // 12 blocks of 4 = 48 tokens: enough for the longest sequence alone
    // (max 20 + 24 = 44), far too few for all of them at once.
    Harness h(opt, 12, 4, prefix);
    std::mt19937 rng(4);
    for (uint64_t id = 1; id <= 20; ++id) {
      h.Add(id, {RandomPrompt(rng, 1 + static_cast<int>(rng() % 20)), 1 + static_cast<int32_t>(rng() % 24), 0});
    }
    h.RunToCompletion();
    h.ExpectAllCorrect();
    EXPECT_GT(h.preemptions(), 0) << "the pool is meant to force preemption";
  }
}

TEST(Scheduler, PreemptsTheNewestAndRequeuesItFirst) {
  SchedulerOptions opt{.max_batch_tokens = 64, .max_running = 4};
  Harness h(opt, 6, 4);  // 24 token slots
  std::mt19937 rng(5);
  // Each needs 5 blocks alone (7 + 10 tokens); the pool fits one at a time.
  h.Add(1, {RandomPrompt(rng, 7), 10, 0});  // 2 blocks
  h.Add(2, {RandomPrompt(rng, 7), 10, 0});  // 2 blocks
  h.Add(3, {RandomPrompt(rng, 7), 10, 0});  // 2 blocks: the pool is full
  h.Step();
  h.Add(4, {RandomPrompt(rng, 3), 2, 0});   // waits behind the full pool
  EXPECT_TRUE(h.Step().preempted.empty());  // position 7 still fits block 1
  EXPECT_EQ(h.sched().num_waiting(), 1);
  // Seq 1 decodes position 8 -> needs a third block: seq 3 (newest) goes.
  const StepPlan plan = h.Step();
  ASSERT_EQ(plan.preempted, (std::vector<uint64_t>{3}));
  EXPECT_TRUE(plan.admitted.empty()) << "no admission in a step that preempted";
  const Sequence* s3 = h.sched().Find(3);
  EXPECT_FALSE(s3->running);
  EXPECT_EQ(s3->num_computed, 0);
  EXPECT_EQ(s3->tokens.size(), 9u) << "keeps its generated tokens to recompute";
  // It is readmitted before seq 4, which arrived later.
  h.RunToCompletion();
  h.ExpectAllCorrect();
  const auto& all = h.all_admissions();
  const auto first4 = std::find(all.begin(), all.end(), 4u);
  ASSERT_NE(first4, all.end());
  EXPECT_GE(std::count(all.begin(), first4, 3u), 2) << "seq 4 overtook the preempted seq 3";
  EXPECT_EQ(h.admission_order(), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(Scheduler, RemoveFreesBlocksAtOnceForRunningAndWaiting) {
  SchedulerOptions opt{.max_batch_tokens = 32, .max_running = 2};
  Harness h(opt, 20, 4, /*prefix_cache=*/false);
  std::mt19937 rng(6);
  h.Add(1, {RandomPrompt(rng, 30), 10, 0});
  h.Add(2, {RandomPrompt(rng, 9), 10, 0});
  h.Add(3, {RandomPrompt(rng, 9), 10, 0});
  h.Step();
  h.Step();
  EXPECT_EQ(h.sched().num_running(), 2);
  EXPECT_EQ(h.sched().num_waiting(), 1);
  const int32_t held1 = static_cast<int32_t>(h.sched().block_table(1).size());
  ASSERT_GT(held1, 0);
  const int32_t free_before = h.kv().num_free_blocks();
  h.sched().Remove(1);  // mid-prefill/decode
  EXPECT_EQ(h.kv().num_free_blocks(), free_before + held1);
  EXPECT_EQ(h.sched().Find(1), nullptr);
  h.sched().Remove(3);  // still queued
  EXPECT_EQ(h.sched().num_waiting(), 0);
  h.sched().Remove(12345);  // unknown: ignored
  h.sched().Remove(2);
  EXPECT_EQ(h.kv().num_free_blocks(), 20);
  EXPECT_TRUE(h.sched().Schedule().empty());
}

TEST(Scheduler, RepeatedPromptIsServedFromThePrefixCache) {
  SchedulerOptions opt{.max_batch_tokens = 128, .max_running = 4};
  Harness h(opt, 64, 16);
  std::mt19937 rng(7);
  const auto prompt = RandomPrompt(rng, 100);
  h.Add(1, {prompt, 5, 0});
  h.RunToCompletion();
  h.Add(2, {prompt, 5, 0});
  const StepPlan plan = h.Step();
  ASSERT_EQ(plan.admitted.size(), 1u);
  EXPECT_EQ(plan.admitted[0].cached_tokens, 96);
  EXPECT_EQ(plan.seqs[0].start, 96);
  EXPECT_EQ(plan.seqs[0].n_tokens, 4);
  h.RunToCompletion();
  h.ExpectAllCorrect();
}

TEST(Scheduler, RandomWorkloadsKeepEveryInvariant) {
  std::mt19937 rng(8);
  for (int round = 0; round < 12; ++round) {
    SchedulerOptions opt{.max_batch_tokens = 8 + static_cast<int32_t>(rng() % 120),
                         .max_running = 1 + static_cast<int32_t>(rng() % 12),
                         .max_prefill_tokens_with_decodes = static_cast<int32_t>(rng() % 3) * 7};
    if (rng() % 2 == 0) opt.step_token_sizes = {4, 8, 16, 32, 64};
    const int32_t bs = 1 + static_cast<int32_t>(rng() % 16);
    const int32_t max_len = 60;
    const int32_t blocks = (max_len + bs - 1) / bs + static_cast<int32_t>(rng() % 40);
    Harness h(opt, blocks, bs, rng() % 2 == 0);
    // A few shared stems so the prefix cache gets hits.
    std::vector<std::vector<int32_t>> stems = {RandomPrompt(rng, 30), RandomPrompt(rng, 30)};
    uint64_t next_id = 1;
    for (int wave = 0; wave < 6; ++wave) {
      for (int i = 0; i < 5; ++i) {
        std::vector<int32_t> prompt = stems[rng() % 2];
        prompt.resize(1 + rng() % 30);
        const auto tail = RandomPrompt(rng, static_cast<int>(rng() % 10));
        prompt.insert(prompt.end(), tail.begin(), tail.end());
        const int32_t max_new = 1 + static_cast<int32_t>(rng() % (max_len - prompt.size()));
        h.Add(next_id++, {prompt, max_new, static_cast<int32_t>(rng() % 3)});
      }
      for (int s = 0; s < 5; ++s) h.Step();
    }
    h.RunToCompletion();
    h.ExpectAllCorrect();
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace rocmforge::sched
