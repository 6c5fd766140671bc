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
// 2. The RMSNorm + quantization kernel's layout (SetRmsNormQuantKernel).
#pragma once

#include <cstdint>

#include "kernels/gpu_api.h"

namespace rocmforge::gpu {

// ZeroSpans (the spans) is in gpu_api.h: every quantizing producer there
// (LaunchQuantizeActivation, LaunchSwiGLUQuantize, LaunchRmsNormQuantize,
// LaunchAddRmsNormQuantize) takes one as its last, optional argument.

// Zeroes the spans in a launch of its own: what those producers do where
// their kernel cannot zero in its own pass (unaligned arrays, a kernel
// without zeroing).
void LaunchZeroSpans(const ZeroSpans& zero, Stream s);

// Tells the GEMM launches that follow on this host thread that these parts'
// outputs (y[0 .. n * rows) of each) are already zero: LaunchZeroParts
// (kernels/gemm_parts.h) skips a table whose every part is among them.
// ClearOutputsZeroed() ends it; call it right after the GEMM launch. Returns
// (and clears) whether a LaunchZeroParts call came since MarkOutputsZeroed,
// skipped or not: whether the GEMM split K, which the backend remembers per
// group to decide whether the producer should zero the next time.
void MarkOutputsZeroed(const MatVecPart* parts, int n_parts, int n);
bool ClearOutputsZeroed();

// Which kernel LaunchRmsNormQuantize / LaunchAddRmsNormQuantize use: the one
// that quantizes in the 8-values-per-lane layout of QuantizeEightPerLane
// (kernels/act_quant_device.h, RmsNormQuantKernel; kRunLayout) or the
// register kernel with BlockQuantizeRow (kRegister). The same floats and
// integers either way; with spans to zero, the first where the arrays are
// 16-byte aligned. kByRule (the default): the 8-values-per-lane kernel for the
// Q8_K rule, the register kernel for the Q8_0 rule. H100, tg128 with graphs:
// Q8_0 278.4 tok/s with the register kernel vs 270.4 with the other
// (2026-11-26 11:05 UTC); Q4_K_M with kFuseNormQuantizeK 389.1 / 389.0 tok/s
// without it vs 394.9 / 394.9 with it on the 8-values-per-lane kernel
// (2026-11-27 09:02 UTC; 314.0 on the register kernel, 2026-11-26).
enum class NormQuantKernel { kByRule = 0, kRunLayout = 1, kRegister = 2 };
void SetRmsNormQuantKernel(NormQuantKernel k);
NormQuantKernel GetRmsNormQuantKernel();

}  // namespace rocmforge::gpu
