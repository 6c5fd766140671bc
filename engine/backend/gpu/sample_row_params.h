// How the engine's per-row sampling requests become the GPU sampler's row
// records (kernels/gpu_api.h SampleRowParams): one function, so that
// GpuBackend::Sample and the tests that launch the sampler directly pack the
// same parameters the same way.
#ifndef ROCMFORGE_ENGINE_BACKEND_GPU_SAMPLE_ROW_PARAMS_H_
#define ROCMFORGE_ENGINE_BACKEND_GPU_SAMPLE_ROW_PARAMS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/backend/backend.h"
#include "kernels/gpu_api.h"

namespace rocmforge {

// Fills params[r] from requests[r] for n_rows rows and appends each row's
// repetition window (the last repetition_window tokens of its recent list, as
// on the CPU) to `recent`, which the records index by offset and count.
// InvalidArgument if a row asks for more top logprobs than the GPU returns
// (gpu::kMaxTopLogprobs). Outputs are replaced, not appended to.
absl::Status PackSampleRows(const SampleRequest* requests, int n_rows,
                            std::vector<gpu::SampleRowParams>* params, std::vector<int32_t>* recent);

}  // namespace rocmforge

#endif  // ROCMFORGE_ENGINE_BACKEND_GPU_SAMPLE_ROW_PARAMS_H_
