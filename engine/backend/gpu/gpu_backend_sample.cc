// GpuBackend::Sample: per-row parameters and recent tokens go up in one copy,
// the device samples with many blocks per row (kernels/sampling.hip: plain
// greedy rows take a two-kernel argmax, the rest a histogram / candidate-list
// pipeline), and only the small result records come back.
#include <algorithm>
#include <cstring>

#include "engine/backend/gpu/gpu_backend.h"
#include "engine/backend/gpu/sample_row_params.h"
#include "engine/common/status_macros.h"

namespace rocmforge {

absl::Status GpuBackend::Sample(const float* logits, int n_rows, int vocab,
                                const SampleRequest* requests, SampleResult* results) {
  RF_RETURN_IF_ERROR(Flush());  // the step's deferred ops produce the logits
  if (n_rows <= 0) return absl::OkStatus();
  if (vocab <= 0) return absl::InvalidArgumentError("Sample: vocab must be positive");
  std::vector<gpu::SampleRowParams> params;
  std::vector<int32_t> recent;
  RF_RETURN_IF_ERROR(PackSampleRows(requests, n_rows, &params, &recent));
  const size_t params_bytes = params.size() * sizeof(gpu::SampleRowParams);
  const size_t recent_off = (params_bytes + 255) / 256 * 256;
  const size_t results_off = (recent_off + recent.size() * sizeof(int32_t) + 255) / 256 * 256;
  const size_t results_bytes = static_cast<size_t>(n_rows) * sizeof(gpu::SampleRowResult);
  const size_t total = results_off + results_bytes;
  RF_RETURN_IF_ERROR(Grow(&sample_io_dev_, &sample_io_cap_, total));
  RF_RETURN_IF_ERROR(Grow(&sample_scratch_, &sample_scratch_cap_, gpu::SampleScratchBytes(n_rows, vocab)));
  if (total > sample_io_host_cap_) {
    RF_RETURN_IF_ERROR(Check(gpu::StreamSync(stream_)));
    gpu::HostFree(sample_io_host_);
    sample_io_host_ = nullptr;
    sample_io_host_cap_ = 0;
    RF_RETURN_IF_ERROR(Check(gpu::HostAlloc(&sample_io_host_, total)));
    sample_io_host_cap_ = total;
  }
  auto* host = static_cast<uint8_t*>(sample_io_host_);
  auto* dev = static_cast<uint8_t*>(sample_io_dev_);
  std::memcpy(host, params.data(), params_bytes);
  if (!recent.empty()) std::memcpy(host + recent_off, recent.data(), recent.size() * sizeof(int32_t));
  RF_RETURN_IF_ERROR(Check(gpu::CopyToDevice(dev, host, results_off, stream_)));
  auto* dev_results = reinterpret_cast<gpu::SampleRowResult*>(dev + results_off);
  // Plain greedy rows (the usual decode) take the many-blocks-per-row argmax.
  const bool plain_greedy = std::all_of(params.begin(), params.end(), [](const gpu::SampleRowParams& p) {
    return p.temperature <= 0.0f && (p.repetition_penalty == 1.0f || p.recent_count == 0) &&
           p.n_top_logprobs == 0;
  });
  if (plain_greedy) {
    gpu::LaunchSampleGreedy(logits, n_rows, vocab, dev_results, sample_scratch_, stream_);
  } else {
    gpu::LaunchSample(logits, n_rows, vocab, reinterpret_cast<const gpu::SampleRowParams*>(dev),
                      reinterpret_cast<const int32_t*>(dev + recent_off), dev_results,
                      sample_scratch_, stream_);
  }
  RF_RETURN_IF_ERROR(Check(gpu::CopyToHost(host + results_off, dev + results_off, results_bytes, stream_)));
  ProbeSampleEnd();
  RF_RETURN_IF_ERROR(Synchronize());
  ProbeSampleDone();
  const auto* res = reinterpret_cast<const gpu::SampleRowResult*>(host + results_off);
  for (int r = 0; r < n_rows; ++r) {
    results[r].token = res[r].token;
    results[r].logprob = res[r].logprob;
    results[r].top_logprobs.clear();
    const int n_top = std::min(params[r].n_top_logprobs, vocab);  // the kernel's count too
    for (int k = 0; k < n_top; ++k) {
      results[r].top_logprobs.emplace_back(res[r].top_ids[k], res[r].top_logprobs[k]);
    }
  }
  return absl::OkStatus();
}

}  // namespace rocmforge
