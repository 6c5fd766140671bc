// quant.h entry points: route each call to the per-format kernel, and pick the
// AVX2 dot products at run time when the CPU has AVX2, FMA and F16C.
#include <atomic>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "engine/gguf/quant.h"
#include "engine/gguf/quant_internal.h"

namespace rocmforge::quant {
namespace {

using internal::DotFn;
using DequantFn = void (*)(const void*, float*, int64_t);
using QuantFn = void (*)(const float*, void*, int64_t);

void DequantF32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void QuantF32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }

struct Kernels {
  DequantFn dequant = nullptr;
  QuantFn quant = nullptr;
  GgmlType act = GgmlType::F32;
  DotFn dot = nullptr;
};

Kernels KernelsFor(GgmlType t) {
  using namespace internal;
  switch (t) {
    case GgmlType::F32: return {DequantF32, QuantF32, GgmlType::F32, DotF32_F32};
    case GgmlType::F16: return {DequantF16, QuantF16, GgmlType::F32, DotF16_F32};
    case GgmlType::BF16: return {DequantBF16, QuantBF16, GgmlType::F32, DotBF16_F32};
    case GgmlType::Q4_0: return {DequantQ4_0, QuantQ4_0, GgmlType::Q8_0, DotQ4_0_Q8_0};
    case GgmlType::Q4_1: return {DequantQ4_1, QuantQ4_1, GgmlType::Q8_0, DotQ4_1_Q8_0};
    case GgmlType::Q5_0: return {DequantQ5_0, QuantQ5_0, GgmlType::Q8_0, DotQ5_0_Q8_0};
    case GgmlType::Q5_1: return {DequantQ5_1, QuantQ5_1, GgmlType::Q8_0, DotQ5_1_Q8_0};
    case GgmlType::Q8_0: return {DequantQ8_0, QuantQ8_0, GgmlType::Q8_0, DotQ8_0_Q8_0};
    case GgmlType::Q8_1: return {DequantQ8_1, QuantQ8_1, GgmlType::Q8_0, DotQ8_1_Q8_0};
    case GgmlType::Q2_K: return {DequantQ2_K, QuantQ2_K, GgmlType::Q8_K, DotQ2_K_Q8_K};
    case GgmlType::Q3_K: return {DequantQ3_K, QuantQ3_K, GgmlType::Q8_K, DotQ3_K_Q8_K};
    case GgmlType::Q4_K: return {DequantQ4_K, QuantQ4_K, GgmlType::Q8_K, DotQ4_K_Q8_K};
    case GgmlType::Q5_K: return {DequantQ5_K, QuantQ5_K, GgmlType::Q8_K, DotQ5_K_Q8_K};
    case GgmlType::Q6_K: return {DequantQ6_K, QuantQ6_K, GgmlType::Q8_K, DotQ6_K_Q8_K};
    case GgmlType::Q8_K: return {DequantQ8_K, QuantQ8_K, GgmlType::Q8_K, DotQ8_K_Q8_K};
    default: return {};
  }
}

// AVX2, FMA and F16C from CPUID, plus OS support for the YMM registers.
// (cpuid rather than __builtin_cpu_supports: clang 15, which the HIP build
// uses, does not know the "f16c" feature name.)
bool CpuHasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), f16c = ecx & (1u << 29);
  if (!fma || !osxsave || !f16c) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6u) != 0x6u) return false;  // XMM and YMM state enabled
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return ebx & (1u << 5);  // AVX2
#else
  return false;
#endif
}

std::atomic<bool> g_force_scalar{false};

bool UseAvx2() {
  static const bool has = CpuHasAvx2();
  return has && !g_force_scalar.load(std::memory_order_relaxed);
}

}  // namespace

bool IsSupported(GgmlType t) { return KernelsFor(t).dequant != nullptr; }

// Every supported type can also be produced (Q8_K/Q8_1 mainly as activations).
bool CanQuantize(GgmlType t) { return KernelsFor(t).quant != nullptr; }

void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n) {
  const Kernels k = KernelsFor(t);
  if (k.dequant) k.dequant(src, dst, n);
}

void QuantizeRow(GgmlType t, const float* src, void* dst, int64_t n) {
  if (UseAvx2()) {
    if (internal::QuantFn fast = internal::Avx2QuantFor(t)) return fast(src, dst, n);
  }
  const Kernels k = KernelsFor(t);
  if (k.quant) k.quant(src, dst, n);
}

GgmlType ActivationType(GgmlType weight_type) { return KernelsFor(weight_type).act; }

size_t ActivationRowBytes(GgmlType weight_type, int64_t n) {
  switch (ActivationType(weight_type)) {
    case GgmlType::Q8_0: return static_cast<size_t>(n / kQK8_0) * sizeof(BlockQ8_0);
    case GgmlType::Q8_K: return static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K);
    default: return static_cast<size_t>(n) * sizeof(float);
  }
}

void QuantizeActivation(GgmlType weight_type, const float* x, void* dst, int64_t n) {
  QuantizeRow(ActivationType(weight_type), x, dst, n);
}

float VecDot(GgmlType weight_type, const void* w_row, const void* act_row, int64_t n) {
  if (UseAvx2()) {
    if (DotFn fast = internal::Avx2DotFor(weight_type)) return fast(w_row, act_row, n);
  }
  const Kernels k = KernelsFor(weight_type);
  return k.dot ? k.dot(w_row, act_row, n) : 0.f;
}

const char* VecDotImpl() { return UseAvx2() && internal::Avx2DotFor(GgmlType::Q8_0) ? "avx2" : "scalar"; }

void ForceScalar(bool on) { g_force_scalar.store(on, std::memory_order_relaxed); }

}  // namespace rocmforge::quant
