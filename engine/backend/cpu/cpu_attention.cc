// Causal paged attention over a variable-length batch: every step token
// attends to the cached K/V of its own sequence, read through the sequence's
// block table, up to and including its own position.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_simd.h"

namespace rocmforge {

void CpuBackend::Attention(int layer, const float* q, float* out, int n_heads, float scale) {
  const int n = step_.n_tokens();
  const int hd = kv_.head_dim;
  const int group = n_heads / kv_.n_kv_heads;  // q heads per kv head
  const int q_stride = n_heads * hd;
  const int32_t bs = kv_.block_size;
  pool_.ParallelFor(static_cast<int64_t>(n) * n_heads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / n_heads), h = static_cast<int>(item % n_heads);
      const BatchSeq& seq = step_.seqs[token_seq_[t]];
      const int32_t ctx = seq.kv_len - seq.n_tokens + (t - seq.token_start) + 1;  // visible positions
      const int kvh = h / group;
      const float* qh = q + static_cast<int64_t>(t) * q_stride + h * hd;
      float* oh = out + static_cast<int64_t>(t) * q_stride + h * hd;
      scores.resize(ctx);
      float max_score = -INFINITY;
      for (int32_t j = 0; j < ctx; ++j) {
        const int32_t slot = seq.block_table[j / bs] * bs + j % bs;
        const float s = cpu::DotF32(qh, KvRow(k_cache_, layer, slot) + kvh * hd, hd) * scale;
        scores[j] = s;
        max_score = std::max(max_score, s);
      }
      // Softmax with the max subtracted, so large scores cannot overflow.
      double sum = 0.0;
      for (int32_t j = 0; j < ctx; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      std::fill(oh, oh + hd, 0.0f);
      for (int32_t j = 0; j < ctx; ++j) {
        const int32_t slot = seq.block_table[j / bs] * bs + j % bs;
        cpu::AxpyF32(scores[j] * inv, KvRow(v_cache_, layer, slot) + kvh * hd, oh, hd);
      }
    }
  });
}

}  // namespace rocmforge
