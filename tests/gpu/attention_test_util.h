// Step batches over paged KV caches for the attention tests: sequences of
// new tokens ending at given contexts, over block tables scattered at random.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "engine/backend/step_batch.h"

namespace rocmforge::gputest {

inline constexpr int kBlock = 16;  // KV block size of these tests

// Head shape of a parameterised attention test.
struct AttnCase {
  int n_heads, n_kv_heads, head_dim;
};
// Test-name suffix "h<heads>_kv<kv heads>_d<head dim>".
inline std::string AttnCaseName(const ::testing::TestParamInfo<AttnCase>& i) {
  return "h" + std::to_string(i.param.n_heads) + "_kv" + std::to_string(i.param.n_kv_heads) + "_d" +
         std::to_string(i.param.head_dim);
}

// Builds a step: for each sequence, `n_new[s]` tokens ending at context `ctx[s]`.
inline StepBatch MakeStep(const std::vector<int>& ctx, const std::vector<int>& n_new,
                           const std::vector<std::vector<int32_t>>& tables) {
  StepBatch b;
  for (size_t s = 0; s < ctx.size(); ++s) {
    BatchSeq q;
    q.token_start = b.n_tokens();
    q.n_tokens = n_new[s];
    q.kv_len = ctx[s];
    q.block_table = tables[s];
    for (int i = 0; i < n_new[s]; ++i) {
      const int pos = ctx[s] - n_new[s] + i;
      b.tokens.push_back(0);
      b.positions.push_back(pos);
      b.slots.push_back(tables[s][pos / kBlock] * kBlock + pos % kBlock);
    }
    b.logit_rows.push_back(b.n_tokens() - 1);
    b.seqs.push_back(q);
  }
  return b;
}

// Block tables for sequences of `ctx` positions, using every one of
// `num_blocks` blocks (each once) in a random order.
inline std::vector<std::vector<int32_t>> ScatteredTables(std::mt19937& rng, const std::vector<int>& ctx,
                                                         int num_blocks) {
  std::vector<int32_t> ids(num_blocks);
  for (int i = 0; i < num_blocks; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<std::vector<int32_t>> tables;
  size_t next = 0;
  for (int c : ctx) {
    std::vector<int32_t> t;
    for (int i = 0; i < (c + kBlock - 1) / kBlock; ++i) t.push_back(ids[next++]);
    tables.push_back(t);
  }
  return tables;
}

}  // namespace rocmforge::gputest
