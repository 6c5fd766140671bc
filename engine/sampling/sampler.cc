#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "engine/sampling/philox.h"

namespace rocmforge {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Candidate {
  float logit;
  int32_t id;
};

// Descending logit, lower id first on ties: the one order every sampler uses.
inline bool Before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void ApplyRepetitionPenalty(std::vector<float>& logits, const SamplingParams& p,
                            const int32_t* recent, size_t n_recent) {
  if (p.repetition_penalty == 1.0f || p.repetition_window <= 0 || n_recent == 0) return;
  const size_t window = std::min(n_recent, static_cast<size_t>(p.repetition_window));
  std::unordered_set<int32_t> seen;
  for (size_t i = n_recent - window; i < n_recent; ++i) {
    const int32_t t = recent[i];
    if (t < 0 || t >= static_cast<int32_t>(logits.size()) || !seen.insert(t).second) continue;
    float& l = logits[t];
    l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
  }
}

// Fills logprob / top_logprobs from the log-softmax of `s` (full vocabulary).
void FillLogprobs(const std::vector<float>& s, float s_max, int32_t n_top, SampledToken* out) {
  double sum = 0.0;
  if (s_max != kNegInf) {
    for (float v : s) sum += std::exp(static_cast<double>(v) - s_max);
  }
  const double lse = s_max == kNegInf ? 0.0 : s_max + std::log(sum);
  if (out->token >= 0) out->logprob = static_cast<float>(s[out->token] - lse);
  if (n_top <= 0) return;
  std::vector<Candidate> all(s.size());
  for (size_t i = 0; i < s.size(); ++i) all[i] = {s[i], static_cast<int32_t>(i)};
  const size_t k = std::min(all.size(), static_cast<size_t>(n_top));
  std::partial_sort(all.begin(), all.begin() + k, all.end(), Before);
  out->top_logprobs.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    out->top_logprobs.emplace_back(all[i].id, static_cast<float>(all[i].logit - lse));
  }
}

}  // namespace

SampledToken SampleToken(const float* logits, int32_t vocab, const SamplingParams& params,
                         uint64_t step, const int32_t* recent, size_t n_recent) {
  SampledToken out;
  if (vocab <= 0) return out;
  std::vector<float> s(logits, logits + vocab);
  for (float& v : s) {
    if (!std::isfinite(v)) v = kNegInf;
  }
  ApplyRepetitionPenalty(s, params, recent, n_recent);

  if (params.greedy()) {
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; ++i) {
      if (s[i] > s[best]) best = i;
    }
    out.token = best;
    FillLogprobs(s, s[best], params.logprobs, &out);
    return out;
  }

  const float inv_t = 1.0f / params.temperature;
  float s_max = kNegInf;
  for (float& v : s) {
    v *= inv_t;
    s_max = std::max(s_max, v);
  }
  if (s_max == kNegInf) {  // nothing finite to sample from
    out.token = 0;
    FillLogprobs(s, s_max, params.logprobs, &out);
    return out;
  }

  // Candidates in sampling order. Only as much of the list is sorted as the
  // filters need: top-k sorts k, min-p alone sorts the survivors.
  std::vector<Candidate> cand;
  cand.reserve(vocab);
  const bool min_p_only = params.top_k <= 0 && params.top_p >= 1.0f && params.min_p > 0.0f;
  const float min_p_floor = min_p_only ? s_max + std::log(params.min_p) : kNegInf;
  for (int32_t i = 0; i < vocab; ++i) {
    if (s[i] != kNegInf && s[i] >= min_p_floor) cand.push_back({s[i], i});
  }
  size_t n = cand.size();
  if (n == 0) {  // only reachable with unvalidated parameters (e.g. infinite temperature)
    out.token = static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
    FillLogprobs(s, s_max, params.logprobs, &out);
    return out;
  }
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < n) {
    n = static_cast<size_t>(params.top_k);
    std::partial_sort(cand.begin(), cand.begin() + n, cand.end(), Before);
    cand.resize(n);
  } else {
    std::sort(cand.begin(), cand.end(), Before);
  }

  // Unnormalised probabilities relative to the best candidate.
  std::vector<double> w(n);
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    w[i] = std::exp(static_cast<double>(cand[i].logit) - s_max);
    total += w[i];
  }
  if (params.top_p < 1.0f) {
    const double target = params.top_p * total;
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += w[i];
      if (cum >= target) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  if (params.min_p > 0.0f) {
    const double floor = params.min_p * w[0];
    size_t keep = 1;
    while (keep < n && w[keep] >= floor) ++keep;
    n = keep;
  }
  total = 0.0;
  for (size_t i = 0; i < n; ++i) total += w[i];

  const double u = SampleUniform(params.seed, step);
  const double target = u * total;
  double cum = 0.0;
  out.token = cand[n - 1].id;  // rounding fallback: the last kept candidate
  for (size_t i = 0; i < n; ++i) {
    cum += w[i];
    if (cum > target) {
      out.token = cand[i].id;
      break;
    }
  }
  FillLogprobs(s, s_max, params.logprobs, &out);
  return out;
}

}  // namespace rocmforge
