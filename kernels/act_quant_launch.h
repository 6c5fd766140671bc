// Launch interface of the activation-quantizing producers beyond gpu_api.h
// (plain C++, like gpu_api.h; kernels/quantize_activation.hip, rmsnorm.hip):
//
// 1. Zeroing. A GEMM split over K (the MMQ GEMM, kernels/matmul_mmq.hip)
// accumulates its splits into y with atomics, so y must be zero first:
// LaunchZeroParts, one small kernel before each such GEMM (112 of them in a
// 32-sequence decode step of Llama-3-8B, ~2.6 us each on the H100). The kernel
// that runs just before the GEMM and produces its input (the activation
// quantization, RMSNorm + quantization, SwiGLU + quantization) can store those
// zeros in its own pass instead; the GEMM's launch then skips its zeroing
// (MarkOutputsZeroed).
// 2. The RMSNorm + quantization kernel's layout (SetRmsNormQuantRunLayout).
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"

namespace rocmforge::gpu {

// Float spans to zero, passed by value to the producer kernels. The spans must
// not overlap anything the producer reads or writes (the caller checks).
struct ZeroSpans {
  static constexpr int kMax = 3;
  float* p[kMax] = {nullptr, nullptr, nullptr};
  int64_t count[kMax] = {0, 0, 0};  // floats
  int n = 0;
};

// The quantizing producers with zeroing; each is bit for bit its plain
// counterpart in gpu_api.h (LaunchQuantizeActivation, LaunchSwiGLUQuantize,
// LaunchRmsNormQuantize, LaunchAddRmsNormQuantize) plus the zeros. Use only
// where the matching *Supported is true (otherwise nothing is launched).
bool QuantizeZeroingSupported(GgmlType weight_type, const float* x, int64_t total);
void LaunchQuantizeActivationZeroing(GgmlType weight_type, const float* x, int64_t total, void* out,
                                     const ZeroSpans& zero, Stream s);
bool SwiGLUQuantizeZeroingSupported(GgmlType weight_type, const float* gate, const float* up, const float* out,
                                    int64_t n);
void LaunchSwiGLUQuantizeZeroing(const float* gate, const float* up, float* out, int64_t n, GgmlType weight_type,
                                 void* xq, const ZeroSpans& zero, Stream s);
// RmsNormQuantizeSupported(weight_type, dim) and RmsNormQuantizeZeroingSupported
// (16-byte aligned arrays; residual null for the plain RMSNorm) cover these.
bool RmsNormQuantizeZeroingSupported(const float* x, const float* residual, const float* w, const float* out);
void LaunchRmsNormQuantizeZeroing(const float* x, const float* w, float* out, int n, int dim, float eps,
                                  GgmlType weight_type, void* xq, const ZeroSpans& zero, Stream s);
void LaunchAddRmsNormQuantizeZeroing(float* x, const float* residual, const float* w, float* out, int n, int dim,
                                     float eps, GgmlType weight_type, void* xq, const ZeroSpans& zero, Stream s);

// Tells the GEMM launches that follow on this host thread that these parts'
// outputs (y[0 .. n * rows) of each) are already zero: LaunchZeroParts
// (kernels/gemm_parts.h) skips a table whose every part is among them.
// ClearOutputsZeroed() ends it; call it right after the GEMM launch. Returns
// (and clears) whether a LaunchZeroParts call came since MarkOutputsZeroed,
// skipped or not: whether the GEMM split K, which the backend remembers per
// group to decide whether the producer should zero the next time.
void MarkOutputsZeroed(const MatVecPart* parts, int n_parts, int n);
bool ClearOutputsZeroed();

// Which kernel LaunchRmsNormQuantize / LaunchAddRmsNormQuantize use: true the
// one that quantizes in the 8-values-per-lane layout of QuantizeEightPerLane
// (kernels/act_quant_device.h, RmsNormQuantKernel), false (default) the
// register kernel with BlockQuantizeRow. The same floats and integers either
// way; the zeroing variants always take the first. Default false: on the H100
// (2026-11-26 11:05 UTC, tg128 with graphs) Q8_0 278.4 tok/s with the
// register kernel vs 270.4 with the new one (Q4_K_M with kFuseNormQuantizeK
// on: 314.0 vs 330.9, but 340.2 with that fusion off).
void SetRmsNormQuantRunLayout(bool on);
bool GetRmsNormQuantRunLayout();

}  // namespace rocmforge::gpu
