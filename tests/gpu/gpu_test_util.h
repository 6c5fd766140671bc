// Shared helpers of the GPU tests: a GPU backend (or a clear skip), the CPU
// reference backend, weights made from random floats, and error measures.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/backend_factory.h"
#include "engine/backend/gpu/gpu_backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/quant.h"
#include "kernels/gpu_api.h"

namespace rocmforge::gputest {

// y[n][rows] = x[n][cols] . W^T with W given as floats [rows][cols], summed in
// double: the exact reference the GEMM tests measure every path against.
inline std::vector<float> DoubleGemm(const std::vector<float>& w, int64_t rows, int64_t cols,
                                     const std::vector<float>& x, int n) {
  std::vector<float> y(size_t(n) * rows);
  for (int i = 0; i < n; ++i) {
    const float* xi = x.data() + size_t(i) * cols;
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = w.data() + r * cols;
      double acc = 0.0;
      for (int64_t k = 0; k < cols; ++k) acc += double(xi[k]) * wr[k];
      y[size_t(i) * rows + r] = static_cast<float>(acc);
    }
  }
  return y;
}

// Parameter of the per-weight-type matmul tests: a type and the relative error
// its GPU product may have against the CPU backend; named by the type.
struct TypeCase {
  GgmlType type;
  double tol;
};
inline std::string TypeCaseName(const ::testing::TestParamInfo<TypeCase>& i) {
  return std::string(TypeName(i.param.type));
}

// The GPU backend, or nullptr with the reason in *why (no device: skip).
// RF_MATVEC="THREADS_PER_ROW,PAIRS" runs the tests with another batch-1 matvec
// shape (gpu::MatVecConfig), e.g. to compare the numerics of two shapes.
inline std::unique_ptr<GpuBackend> MakeGpu(std::string* why) {
  if (const char* mv = std::getenv("RF_MATVEC"); mv != nullptr) {
    int tpr = 64, pairs = 1;
    if (std::sscanf(mv, "%d,%d", &tpr, &pairs) == 2) gpu::SetMatVecConfig({tpr, pairs != 0});
  }
  auto b = GpuBackend::Create(0);
  if (!b.ok()) {
    *why = std::string(b.status().message());
    return nullptr;
  }
  return std::move(*b);
}

#define RF_REQUIRE_GPU(var)                                                        \
  std::string rf_why_;                                                             \
  std::unique_ptr<GpuBackend> var = ::rocmforge::gputest::MakeGpu(&rf_why_);       \
  if (var == nullptr) GTEST_SKIP() << "no GPU present, skipping: " << rf_why_

inline std::unique_ptr<Backend> MakeCpu() {
  auto b = CreateBackend("cpu", 2);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

// IEEE half bits -> float (host side, exact).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 31, man = h & 1023;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man != 0 ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(man | 1024), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

inline std::vector<float> RandomVec(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// ||a - b|| / ||b||; NaN anywhere gives +inf.
inline double RelErr(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

// A tensor of `rows` x `cols` quantized from random floats; owns its bytes.
struct HostTensor {
  gguf::TensorInfo info;
  std::vector<uint8_t> bytes;
};

inline HostTensor MakeTensor(std::mt19937& rng, GgmlType type, int64_t rows, int64_t cols,
                             float scale = 0.5f, const char* name = "w") {
  HostTensor t;
  // A row of partial blocks is no tensor of this type (LoadWeight refuses it).
  EXPECT_EQ(cols % GetTypeInfo(type)->block_size, 0) << "MakeTensor: " << cols << " is no whole row of "
                                                      << TypeName(type) << " blocks";
  const size_t row_bytes = RowBytes(type, cols);
  t.bytes.resize(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> v = RandomVec(rng, cols, scale);
    quant::QuantizeRow(type, v.data(), t.bytes.data() + r * row_bytes, cols);
  }
  t.info.name = name;
  t.info.type = type;
  t.info.dims = rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
  t.info.data = t.bytes.data();
  t.info.nbytes = t.bytes.size();
  t.info.n_elements = rows * cols;
  return t;
}

// Raw device memory for kernel-level tests, freed at scope exit.
struct DevMem {
  void* p = nullptr;
  explicit DevMem(size_t bytes) { EXPECT_TRUE(gpu::Malloc(&p, bytes).ok); }
  ~DevMem() { gpu::Free(p); }
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
};

// `count` f16 values (raw bits) from device memory.
inline std::vector<uint16_t> DownloadHalves(Backend* g, const void* p, size_t count) {
  std::vector<uint16_t> v(count);
  EXPECT_TRUE(g->Download(v.data(), p, count * sizeof(uint16_t)).ok());
  return v;
}

// Device (or host, for the CPU) copy of `v`, freed with the backend's Free.
struct Buf {
  Backend* b = nullptr;
  float* p = nullptr;
  size_t n = 0;
  Buf(Backend* be, size_t count) : b(be), n(count) {
    auto a = be->Alloc(count * sizeof(float) + 16);
    EXPECT_TRUE(a.ok());
    p = static_cast<float*>(*a);
  }
  Buf(Backend* be, const std::vector<float>& v) : Buf(be, v.size()) {
    EXPECT_TRUE(b->Upload(p, v.data(), v.size() * sizeof(float)).ok());
  }
  ~Buf() { b->Free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  std::vector<float> Get() const {
    std::vector<float> v(n);
    EXPECT_TRUE(b->Download(v.data(), p, n * sizeof(float)).ok());
    return v;
  }
};

// The CPU backend's product y[n][rows] = x . W^T, the reference every GPU
// matmul path is checked against.
inline std::vector<float> CpuMatMul(Backend* cpu, const Weight& w, const std::vector<float>& x, int n) {
  Buf xc(cpu, x), yc(cpu, size_t(n) * w.rows);
  cpu->MatMul(w, xc.p, yc.p, n);
  return yc.Get();
}

}  // namespace rocmforge::gputest
