// MatMul on quantized weights in place: y[n][rows] = x[n][cols] . W^T.
#include <algorithm>
#include <string_view>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_simd.h"
#include "engine/common/fp16.h"
#include "engine/gguf/quant.h"

namespace rocmforge {

void CpuBackend::MatMul(const Weight& w, const float* x, float* y, int n) {
  const int64_t cols = w.cols, rows = w.rows;
  const size_t row_bytes = RowBytes(w.type, cols);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const GgmlType type = w.type;
  // Q8_0 / Q4_0 weights: the tiled kernel (several tokens per weight block).
  // VecDotImpl() says "scalar" when tests force the scalar reference; then
  // every type goes through VecDot.
  const bool tiled = (type == GgmlType::Q8_0 || type == GgmlType::Q4_0) &&
                     std::string_view(quant::VecDotImpl()) == "avx2";
  // Each activation row is converted once into the weight type's partner
  // format (Q8_0, Q8_K or F32) and then dotted with every weight row; for the
  // tiled kernel its block scales also once into floats.
  const size_t act_bytes = quant::ActivationRowBytes(w.type, cols);
  const int64_t blocks = cols / 32;
  if (act_.size() < act_bytes * n) act_.resize(act_bytes * n);
  if (tiled && act_scales_.size() < static_cast<size_t>(blocks * n)) act_scales_.resize(blocks * n);
  uint8_t* act = act_.data();
  float* act_scales = act_scales_.data();
  pool_.ParallelFor(n, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quant::QuantizeActivation(w.type, x + t * cols, act + t * act_bytes, cols);
      if (!tiled) continue;
      const auto* yb = reinterpret_cast<const BlockQ8_0*>(act + t * act_bytes);
      for (int64_t i = 0; i < blocks; ++i) act_scales[t * blocks + i] = Fp16ToFp32(yb[i].d);
    }
  });

  // Parallel over output rows: a thread's chunk of weight rows stays in cache
  // while every token of the step (in tiles of 32) is dotted with it.
  pool_.ParallelFor(
      rows,
      [&](int64_t rb, int64_t re) {
        constexpr int64_t kTokenTile = 32;  // activations of a tile stay in L1/L2
        for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
          const int64_t t1 = std::min<int64_t>(n, t0 + kTokenTile);
          if (tiled &&
              cpu::MatMulTileQ8(type, base, row_bytes, rb, re, act, act_bytes, act_scales, t0, t1, cols, y, rows)) {
            continue;
          }
          for (int64_t r = rb; r < re; ++r) {
            const uint8_t* wr = base + r * row_bytes;
            for (int64_t t = t0; t < t1; ++t) y[t * rows + r] = quant::VecDot(type, wr, act + t * act_bytes, cols);
          }
        }
      },
      8);
}

}  // namespace rocmforge
