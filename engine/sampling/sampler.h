// The CPU sampler: the reference every other sampler (the GPU one) must match.
//
// Pipeline for one row of logits, in this order:
//   1. repetition penalty over the distinct tokens of the last
//      `repetition_window` entries of `recent` (llama.cpp semantics: positive
//      logits are divided by the penalty, negative ones multiplied);
//   2. temperature 0 -> greedy: argmax, ties go to the lowest id;
//   3. otherwise logits / temperature, candidates sorted by descending logit
//      (ties: lower id first), then top-k, top-p (smallest prefix whose
//      probability mass reaches top_p), min-p (drop p < min_p * p_max);
//   4. u = SampleUniform(seed, step); the token is the first kept candidate
//      whose cumulative probability (renormalised over the kept ones)
//      exceeds u.
// logprob and top_logprobs are the log-softmax over the full vocabulary after
// the penalty and the temperature (temperature 1 when greedy), before filtering.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/sampling/sampling_params.h"

namespace rocmforge {

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;  // params.logprobs entries, best first
};

// `logits` has `vocab` values; `recent` the tokens (oldest first) the
// repetition penalty looks at. Parameters must have passed
// ValidateSamplingParams. Non-finite logits count as -inf.
SampledToken SampleToken(const float* logits, int32_t vocab, const SamplingParams& params,
                         uint64_t step, const int32_t* recent, size_t n_recent);

}  // namespace rocmforge
