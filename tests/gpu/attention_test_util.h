// Step batches over paged KV caches for the attention tests: sequences of
// new tokens ending at given contexts, over block tables scattered at random.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "engine/backend/step_batch.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {

inline constexpr int kBlock = 16;  // KV block size of these tests

// Head shape of a parameterised attention test.
struct AttnCase {
  int n_heads, n_kv_heads, head_dim;
};
// The shapes the matrix-core decode kernel takes: head_dim 64 / 128, chunks
// of 1, 2, 4 and 8 query heads (GQA 2, 3, 4 and 8, MQA, MHA).
inline const std::vector<AttnCase> kMmaAttnCases = {
    {8, 2, 64}, {4, 1, 64}, {8, 8, 128}, {32, 8, 128}, {16, 2, 128}, {32, 1, 128}, {12, 4, 64},
};
// Those and the shapes only the other kernels take: head_dim 256, and 96 (the
// per-head kernel).
inline std::vector<AttnCase> AllAttnCases() {
  std::vector<AttnCase> all = kMmaAttnCases;
  all.push_back({8, 4, 256});
  all.push_back({6, 2, 96});
  return all;
}

// Test-name suffix "h<heads>_kv<kv heads>_d<head dim>".
inline std::string AttnCaseName(const ::testing::TestParamInfo<AttnCase>& i) {
  return "h" + std::to_string(i.param.n_heads) + "_kv" + std::to_string(i.param.n_kv_heads) + "_d" +
         std::to_string(i.param.head_dim);
}

// Builds a step: for each sequence, `n_new[s]` tokens ending at context `ctx[s]`,
// over KV blocks of `block` positions.
inline StepBatch MakeStep(const std::vector<int>& ctx, const std::vector<int>& n_new,
                           const std::vector<std::vector<int32_t>>& tables, int block = kBlock) {
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
      b.slots.push_back(tables[s][pos / block] * block + pos % block);
    }
    b.logit_rows.push_back(b.n_tokens() - 1);
    b.seqs.push_back(q);
  }
  return b;
}

// Block tables for sequences of `ctx` positions (blocks of `block` positions),
// using every one of `num_blocks` blocks (each once) in a random order.
inline std::vector<std::vector<int32_t>> ScatteredTables(std::mt19937& rng, const std::vector<int>& ctx,
                                                         int num_blocks, int block = kBlock) {
  std::vector<int32_t> ids(num_blocks);
  for (int i = 0; i < num_blocks; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<std::vector<int32_t>> tables;
  size_t next = 0;
  for (int c : ctx) {
    std::vector<int32_t> t;
    for (int i = 0; i < (c + block - 1) / block; ++i) t.push_back(ids[next++]);
    tables.push_back(t);
  }
  return tables;
}

// Stores random K and V (layer 0) at every position of `fill` in each
// backend's KV cache, the same values in all: the caches a later step's
// attention reads. False if a backend fails the step.
inline bool StoreRandomKv(std::mt19937& rng, const StepBatch& fill, int kv_dim,
                          const std::vector<Backend*>& backends) {
  const size_t m = static_cast<size_t>(fill.n_tokens());
  const std::vector<float> k = RandomVec(rng, m * kv_dim), v = RandomVec(rng, m * kv_dim);
  for (Backend* b : backends) {
    if (!b->BeginStep(fill).ok()) return false;
    Buf kb(b, k), vb(b, v);
    b->StoreKv(0, kb.p, vb.p);
    if (!b->Synchronize().ok()) return false;
  }
  return true;
}

}  // namespace rocmforge::gputest
