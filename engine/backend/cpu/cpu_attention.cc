// Causal paged attention over a variable-length batch: every step token
// attends to the cached K/V of its own sequence, read through the sequence's
// block table, up to and including its own position.
//
// Work items are (token, kv head, run of q heads sharing that kv head): with
// GQA/MQA the K and V rows are loaded once for the whole run. When there are
// too few items to keep the threads busy (decode of one sequence with MQA),
// each q head becomes its own item. Per q head the arithmetic is the same
// either way, so results do not depend on the batch.
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
  const int64_t row_stride = kv_dim();  // between the rows of a KV block
  const int64_t grouped_items = static_cast<int64_t>(n) * kv_.n_kv_heads;
  const int run = grouped_items >= 2 * pool_.size() ? group : 1;  // q heads per item
  const int runs_per_kv = group / run;
  const int64_t items = grouped_items * runs_per_kv;

  pool_.ParallelFor(items, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / (kv_.n_kv_heads * runs_per_kv));
      const int rest = static_cast<int>(item % (kv_.n_kv_heads * runs_per_kv));
      const int kvh = rest / runs_per_kv;
      const int h0 = kvh * group + (rest % runs_per_kv) * run;  // first q head of this item
      const BatchSeq& seq = step_.seqs[token_seq_[t]];
      const int32_t ctx = seq.kv_len - seq.n_tokens + (t - seq.token_start) + 1;  // visible positions
      const float* qt = q + static_cast<int64_t>(t) * q_stride;
      float* ot = out + static_cast<int64_t>(t) * q_stride;
      scores.resize(static_cast<size_t>(run) * ctx);

      // f(j0, n, rows) for the visible positions block by block, in order:
      // positions j0 .. j0 + n - 1, whose K or V rows of this kv head start at
      // `rows`, row_stride apart (no division per position).
      auto each_block = [&](float* cache, auto&& f) {
        for (int32_t j0 = 0; j0 < ctx; j0 += bs) {
          f(j0, std::min(bs, ctx - j0), KvBlock(cache, layer, seq.block_table[j0 / bs]) + kvh * hd);
        }
      };
      each_block(k_cache_, [&](int32_t j0, int n_rows, const float* k) {
        for (int g = 0; g < run; ++g) {
          cpu::ScoresF32(qt + (h0 + g) * hd, k, row_stride, n_rows, hd, scale, scores.data() + g * ctx + j0);
        }
      });
      // Softmax per head with the max subtracted, so large scores cannot overflow.
      for (int g = 0; g < run; ++g) {
        float* s = scores.data() + g * ctx;
        const float max_score = *std::max_element(s, s + ctx);
        double sum = 0.0;
        for (int32_t j = 0; j < ctx; ++j) {
          s[j] = std::exp(s[j] - max_score);
          sum += s[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int32_t j = 0; j < ctx; ++j) s[j] *= inv;
        std::fill(ot + (h0 + g) * hd, ot + (h0 + g + 1) * hd, 0.0f);
      }
      each_block(v_cache_, [&](int32_t j0, int n_rows, const float* v) {
        for (int g = 0; g < run; ++g) {
          cpu::AccumulateRowsF32(scores.data() + g * ctx + j0, v, row_stride, n_rows, hd, ot + (h0 + g) * hd);
        }
      });
    }
  });
}

}  // namespace rocmforge
