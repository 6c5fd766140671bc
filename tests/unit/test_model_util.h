// Helpers shared by the model tests: load a GGUF model on the CPU backend and
// build StepBatches for one or more sequences with explicit block tables.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/backend_factory.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model.h"
#include "nlohmann/json.hpp"

namespace rocmforge::testing {

inline std::string ModelPath(const std::string& name) { return std::string(ROCMFORGE_MODELS_DIR) + "/" + name; }

inline nlohmann::json LoadReference(const std::string& stem) {
  std::ifstream in(ModelPath(stem + ".reference.json"));
  EXPECT_TRUE(in.good()) << "missing reference " << stem;
  return nlohmann::json::parse(in);
}

struct LoadedModel {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

// Loads `path` on a CPU backend with a KV pool of `num_blocks` blocks.
inline LoadedModel LoadCpuModel(const std::string& path, int threads = 2, int32_t max_step_tokens = 64,
                                int32_t block_size = 16, int32_t num_blocks = 64) {
  LoadedModel m;
  auto file = gguf::GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return m;
  m.file = std::move(*file);
  auto backend = CreateBackend("cpu", threads);
  EXPECT_TRUE(backend.ok()) << backend.status();
  m.backend = std::move(*backend);
  auto model = Model::Load(*m.file, m.backend.get(), max_step_tokens);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return m;
  m.model = std::move(*model);
  const ModelConfig& c = m.model->config();
  KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, block_size, num_blocks};
  EXPECT_TRUE(m.backend->InitKvCache(shape).ok());
  return m;
}

// One sequence's part of a step: `tokens` at positions start_pos.. of a
// sequence whose KV lives in `block_table`; logits for the last token, or for
// every token when all_logits.
struct SeqStep {
  std::vector<int32_t> tokens;
  int32_t start_pos = 0;
  std::vector<int32_t> block_table;
  bool all_logits = false;
};

inline StepBatch MakeBatch(const std::vector<SeqStep>& seqs, int32_t block_size) {
  StepBatch b;
  for (const SeqStep& s : seqs) {
    BatchSeq bs;
    bs.token_start = b.n_tokens();
    bs.n_tokens = static_cast<int32_t>(s.tokens.size());
    bs.kv_len = s.start_pos + bs.n_tokens;
    bs.block_table = s.block_table;
    for (int32_t i = 0; i < bs.n_tokens; ++i) {
      const int32_t pos = s.start_pos + i;
      b.tokens.push_back(s.tokens[i]);
      b.positions.push_back(pos);
      b.slots.push_back(s.block_table[pos / block_size] * block_size + pos % block_size);
      if (s.all_logits || i + 1 == bs.n_tokens) b.logit_rows.push_back(bs.token_start + i);
    }
    b.seqs.push_back(std::move(bs));
  }
  return b;
}

// Runs a step and copies its logits to the host ([logit_rows][vocab]).
inline std::vector<float> RunStep(LoadedModel& m, const StepBatch& b) {
  auto logits = m.model->Forward(b);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return {};
  const size_t count = b.logit_rows.size() * static_cast<size_t>(m.model->config().n_vocab);
  std::vector<float> out(count);
  EXPECT_TRUE(m.backend->Download(out.data(), *logits, count * sizeof(float)).ok());
  return out;
}

inline int32_t Argmax(const float* v, int32_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

// Blocks 0..n-1: the block table of a lone sequence.
inline std::vector<int32_t> Iota(int32_t n, int32_t first = 0) {
  std::vector<int32_t> v(n);
  for (int32_t i = 0; i < n; ++i) v[i] = first + i;
  return v;
}

}  // namespace rocmforge::testing
