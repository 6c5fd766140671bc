#include "engine/backend/gpu/sample_row_params.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace rocmforge {

absl::Status PackSampleRows(const SampleRequest* requests, int n_rows,
                            std::vector<gpu::SampleRowParams>* params, std::vector<int32_t>* recent) {
  params->assign(std::max(0, n_rows), gpu::SampleRowParams{});
  recent->clear();
  for (int r = 0; r < n_rows; ++r) {
    const SampleRequest& q = requests[r];
    const SamplingParams& sp = q.params;
    if (sp.logprobs > gpu::kMaxTopLogprobs) {
      return absl::InvalidArgumentError(
          absl::StrCat("logprobs ", sp.logprobs, " exceeds the GPU limit of ", gpu::kMaxTopLogprobs));
    }
    gpu::SampleRowParams& p = (*params)[r];
    p.temperature = sp.temperature;
    p.top_k = sp.top_k;
    p.top_p = sp.top_p;
    p.min_p = sp.min_p;
    p.repetition_penalty = sp.repetition_penalty;
    const size_t window = sp.repetition_window > 0
                              ? std::min(q.recent.size(), static_cast<size_t>(sp.repetition_window))
                              : 0;
    p.recent_offset = static_cast<int32_t>(recent->size());
    p.recent_count = static_cast<int32_t>(window);
    recent->insert(recent->end(), q.recent.end() - window, q.recent.end());
    p.n_top_logprobs = std::max(0, sp.logprobs);
    p.seed = sp.seed;
    p.step = q.step;
  }
  return absl::OkStatus();
}

}  // namespace rocmforge
