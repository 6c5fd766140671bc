// CPU reference for every supported tensor type: dequantize, quantize, and the
// dot products the CPU matmul runs on weights in place.
//
// How the CPU matmul uses this (the same scheme as the fastest GGUF engines):
// the activation row x (float) is converted once per matmul into
// ActivationType(w) (Q8_0 for the 32-wide legacy types, Q8_K for the k-quants,
// F32 for float weights), then VecDot(w_type, w_row, x_act, n) gives one output.
// Scalar code is the reference; AVX2 variants are picked at run time when the
// CPU has AVX2+FMA+F16C and must agree with the scalar code to float rounding.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/gguf/ggml_types.h"

namespace rocmforge::quant {

// True for types we can dequantize / dot (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K).
bool IsSupported(GgmlType t);
// True for types QuantizeRow can produce.
bool CanQuantize(GgmlType t);

// n must be a multiple of the block size of t.
void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n);
// Reference quantizer (round-to-nearest with the format's usual scale search for
// k-quants). dst must hold RowBytes(t, n).
void QuantizeRow(GgmlType t, const float* src, void* dst, int64_t n);

// The activation format paired with weights of type t.
GgmlType ActivationType(GgmlType weight_type);
size_t ActivationRowBytes(GgmlType weight_type, int64_t n);
void QuantizeActivation(GgmlType weight_type, const float* x, void* dst, int64_t n);
// Dot product of one weight row with an activation row made by
// QuantizeActivation, both of n elements.
float VecDot(GgmlType weight_type, const void* w_row, const void* act_row, int64_t n);

// Which implementation VecDot runs ("avx2" or "scalar"); for logs and tests.
const char* VecDotImpl();
// Tests force the scalar reference with this.
void ForceScalar(bool on);

}  // namespace rocmforge::quant
