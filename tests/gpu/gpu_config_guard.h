// GpuConfigGuard: the process-wide kernel settings of kernels/gpu_api.h (GEMM,
// dense GEMM and its tiles, matvec, prefill / decode attention, the attention
// merge fold, PDL, sampling), saved when the guard is made and restored when
// it goes out of scope. A test that changes any of them declares one guard
// first and sets freely: every test after it starts from the same settings,
// even when this one stops half way at a failed ASSERT (which returns early,
// past any restore written at the end of the body).
//
// Backend settings (fusions, producer zeroing) need no guard: RF_REQUIRE_GPU
// makes a fresh backend for each test.
#pragma once

#include "kernels/gpu_api.h"

namespace rocmforge::gputest {

class GpuConfigGuard {
 public:
  GpuConfigGuard() = default;
  GpuConfigGuard(const GpuConfigGuard&) = delete;
  GpuConfigGuard& operator=(const GpuConfigGuard&) = delete;

  ~GpuConfigGuard() {
    gpu::SetGemmConfig(gemm_);
    gpu::SetDenseGemmConfig(dense_);
    gpu::SetDenseTileConfig(dense_tiles_);
    gpu::SetDenseWgmma(dense_wgmma_);
    gpu::SetMatVecConfig(matvec_);
    gpu::SetPrefillAttnConfig(prefill_attn_);
    gpu::SetDecodeAttnConfig(decode_attn_);
    gpu::SetAttentionMergeFold(merge_fold_);
    gpu::SetPdl(pdl_);
    gpu::SetSampleConfig(sample_);
  }

  // The settings as they were when the guard was made, for a test that
  // changes one field of them.
  const gpu::GemmConfig& gemm() const { return gemm_; }

 private:
  const gpu::GemmConfig gemm_ = gpu::GetGemmConfig();
  const gpu::DenseGemmConfig dense_ = gpu::GetDenseGemmConfig();
  const gpu::DenseTileConfig dense_tiles_ = gpu::GetDenseTileConfig();
  const bool dense_wgmma_ = gpu::GetDenseWgmma();
  const gpu::MatVecConfig matvec_ = gpu::GetMatVecConfig();
  const gpu::PrefillAttnConfig prefill_attn_ = gpu::GetPrefillAttnConfig();
  const gpu::DecodeAttnConfig decode_attn_ = gpu::GetDecodeAttnConfig();
  const bool merge_fold_ = gpu::GetAttentionMergeFold();
  const bool pdl_ = gpu::GetPdl();
  const gpu::SampleConfig sample_ = gpu::GetSampleConfig();
};

}  // namespace rocmforge::gputest
