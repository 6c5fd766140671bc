// Quant-mix choices against llama.cpp's llama_tensor_get_type, spelled out as
// the per-layer lists llama.cpp produces (e.g. for a 32-layer Llama in
// Q4_K_M: attn_v and ffn_down are Q6_K in layers 0-3, 6, 9, ..., 27, 28-31).
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "engine/gguf/quant_mix.h"

namespace rocmforge::quant {
namespace {

std::string Blk(int i, const char* rest) { return "blk." + std::to_string(i) + "." + rest; }

// Layers whose tensor `rest` gets type `t` in a model of n layers.
std::set<int> LayersWith(FileType f, const char* rest, GgmlType t, int n, int64_t cols = 4096) {
  std::set<int> out;
  for (int i = 0; i < n; ++i) {
    if (TensorTypeFor(f, Blk(i, rest), 2, cols, n) == t) out.insert(i);
  }
  return out;
}

TEST(QuantMix, Q4KMFor32Layers) {
  const FileType f = FileType::MOSTLY_Q4_K_M;
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  EXPECT_EQ(LayersWith(f, "attn_v.weight", GgmlType::Q6_K, 32), more);
  EXPECT_EQ(LayersWith(f, "ffn_down.weight", GgmlType::Q6_K, 32), more);
  EXPECT_EQ(LayersWith(f, "attn_v.weight", GgmlType::Q4_K, 32).size(), 16u);
  EXPECT_EQ(LayersWith(f, "ffn_down.weight", GgmlType::Q4_K, 32).size(), 16u);
  for (const char* rest : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight",
                           "ffn_up.weight"}) {
    EXPECT_EQ(LayersWith(f, rest, GgmlType::Q4_K, 32).size(), 32u) << rest;
  }
  EXPECT_EQ(TensorTypeFor(f, "output.weight", 2, 4096, 32), GgmlType::Q6_K);
  EXPECT_EQ(TensorTypeFor(f, "token_embd.weight", 2, 4096, 32), GgmlType::Q4_K);
  // Tied embeddings: token_embd is also the output projection.
  EXPECT_EQ(TensorTypeFor(f, "token_embd.weight", 2, 4096, 32, /*has_output=*/false), GgmlType::Q6_K);
  // Norms and biases stay F32.
  EXPECT_EQ(TensorTypeFor(f, "blk.0.attn_norm.weight", 1, 4096, 32), GgmlType::F32);
  EXPECT_EQ(TensorTypeFor(f, "output_norm.weight", 1, 4096, 32), GgmlType::F32);
  EXPECT_EQ(TensorTypeFor(f, "blk.3.attn_q.bias", 1, 4096, 32), GgmlType::F32);
}

TEST(QuantMix, Q4KMSmallModels) {
  // 6 layers (the tiny test model): n/8 = 0, 7n/8 = 5 -> layers 2 and 5.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q4_K_M, "attn_v.weight", GgmlType::Q6_K, 6), (std::set<int>{2, 5}));
  // 4 layers: n/8 = 0, 7n/8 = 3 -> layers 2 and 3.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q4_K_M, "ffn_down.weight", GgmlType::Q6_K, 4), (std::set<int>{2, 3}));
}

TEST(QuantMix, OtherMixes) {
  // Q8_0: everything Q8_0, output included.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q8_0, "output.weight", 2, 4096, 32), GgmlType::Q8_0);
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q8_0, "attn_v.weight", GgmlType::Q8_0, 32).size(), 32u);
  // Legacy 4/5-bit mixes still give output.weight Q6_K, as llama.cpp does.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_0, "output.weight", 2, 4096, 32), GgmlType::Q6_K);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_0, "blk.0.ffn_down.weight", 2, 4096, 32), GgmlType::Q4_0);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q5_1, "token_embd.weight", 2, 4096, 32), GgmlType::Q5_1);
  // Float mixes.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_F16, "output.weight", 2, 4096, 32), GgmlType::F16);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_BF16, "blk.1.attn_q.weight", 2, 4096, 32), GgmlType::BF16);
  EXPECT_EQ(TensorTypeFor(FileType::ALL_F32, "blk.1.attn_q.weight", 2, 4096, 32), GgmlType::F32);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_F16, "blk.1.attn_norm.weight", 1, 4096, 32), GgmlType::F32);
  // Q3_K_M: attn_v Q5_K in layers 0-1 then Q4_K; ffn_down Q5_K in the first
  // n/16 layers then Q4_K; attn_output Q4_K; the rest Q3_K.
  const FileType m3 = FileType::MOSTLY_Q3_K_M;
  EXPECT_EQ(LayersWith(m3, "attn_v.weight", GgmlType::Q5_K, 32), (std::set<int>{0, 1}));
  EXPECT_EQ(LayersWith(m3, "attn_v.weight", GgmlType::Q4_K, 32).size(), 30u);
  EXPECT_EQ(LayersWith(m3, "ffn_down.weight", GgmlType::Q5_K, 32), (std::set<int>{0, 1}));
  EXPECT_EQ(LayersWith(m3, "attn_output.weight", GgmlType::Q4_K, 32).size(), 32u);
  EXPECT_EQ(LayersWith(m3, "attn_q.weight", GgmlType::Q3_K, 32).size(), 32u);
  // Q3_K_L: attn_v, ffn_down, attn_output Q5_K.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q3_K_L, "attn_output.weight", GgmlType::Q5_K, 32).size(), 32u);
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q3_K_L, "ffn_down.weight", GgmlType::Q5_K, 32).size(), 32u);
  // Q4_K_S: attn_v Q5_K in layers 0-3, ffn_down Q5_K in the first n/8.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q4_K_S, "attn_v.weight", GgmlType::Q5_K, 32), (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q4_K_S, "ffn_down.weight", GgmlType::Q5_K, 32), (std::set<int>{0, 1, 2, 3}));
  // Q5_K_M mirrors Q4_K_M's layer choice; Q5_K_S and Q6_K are uniform.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q5_K_M, "attn_v.weight", GgmlType::Q6_K, 32).size(), 16u);
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q5_K_S, "attn_v.weight", GgmlType::Q5_K, 32).size(), 32u);
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q6_K, "ffn_down.weight", GgmlType::Q6_K, 32).size(), 32u);
  // Q2_K: attn_v, ffn_down, attn_output Q3_K; the rest Q2_K.
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q2_K, "ffn_down.weight", GgmlType::Q3_K, 32).size(), 32u);
  EXPECT_EQ(LayersWith(FileType::MOSTLY_Q2_K, "ffn_up.weight", GgmlType::Q2_K, 32).size(), 32u);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q2_K, "blk.0.attn_v.weight", 2, 4096, 32), GgmlType::Q3_K);
  // With grouped-query attention (n_head / n_head_kv >= 4) attn_v gets Q4_K.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q2_K, "blk.0.attn_v.weight", 2, 4096, 32, true, 4), GgmlType::Q4_K);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q2_K, "blk.0.attn_q.weight", 2, 4096, 32, true, 8), GgmlType::Q2_K);
}

TEST(QuantMix, FallbackForWidthsNotMultipleOf256) {
  // llama.cpp: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; output -> Q8_0.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_K_M, "blk.4.attn_q.weight", 2, 4096 + 32, 32), GgmlType::Q5_0);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_K_M, "blk.0.ffn_down.weight", 2, 11008 + 32, 32), GgmlType::Q8_0);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q5_K_S, "blk.0.ffn_up.weight", 2, 160, 32), GgmlType::Q5_1);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_K_M, "output.weight", 2, 160, 32), GgmlType::Q8_0);
  // Not even a multiple of 32: F16.
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q4_K_M, "blk.0.attn_q.weight", 2, 100, 32), GgmlType::F16);
  EXPECT_EQ(TensorTypeFor(FileType::MOSTLY_Q8_0, "blk.0.attn_q.weight", 2, 100, 32), GgmlType::F16);
}

TEST(QuantMix, ParseAndName) {
  const std::map<std::string, FileType> names = {
      {"F32", FileType::ALL_F32},         {"f16", FileType::MOSTLY_F16},
      {"BF16", FileType::MOSTLY_BF16},    {"q4_0", FileType::MOSTLY_Q4_0},
      {"Q4_1", FileType::MOSTLY_Q4_1},    {"Q5_0", FileType::MOSTLY_Q5_0},
      {"Q5_1", FileType::MOSTLY_Q5_1},    {"Q8_0", FileType::MOSTLY_Q8_0},
      {"Q2_K", FileType::MOSTLY_Q2_K},    {"Q3_K_S", FileType::MOSTLY_Q3_K_S},
      {"q3_k_m", FileType::MOSTLY_Q3_K_M}, {"Q3_K_L", FileType::MOSTLY_Q3_K_L},
      {"Q4_K_S", FileType::MOSTLY_Q4_K_S}, {"Q4_K_M", FileType::MOSTLY_Q4_K_M},
      {"Q5_K_S", FileType::MOSTLY_Q5_K_S}, {"Q5_K_M", FileType::MOSTLY_Q5_K_M},
      {"Q6_K", FileType::MOSTLY_Q6_K},
  };
  for (const auto& [name, want] : names) {
    FileType got;
    ASSERT_TRUE(ParseFileType(name, &got)) << name;
    EXPECT_EQ(got, want) << name;
    FileType again;
    ASSERT_TRUE(ParseFileType(FileTypeName(got), &again)) << name;
    EXPECT_EQ(again, want);
    EXPECT_NE(SupportedFileTypeNames().find(std::string(FileTypeName(got))), std::string::npos);
  }
  // llama.cpp's aliases for the _M mixes.
  FileType alias;
  ASSERT_TRUE(ParseFileType("Q4_K", &alias));
  EXPECT_EQ(alias, FileType::MOSTLY_Q4_K_M);
  ASSERT_TRUE(ParseFileType("q5_k", &alias));
  EXPECT_EQ(alias, FileType::MOSTLY_Q5_K_M);
  ASSERT_TRUE(ParseFileType("Q3_K", &alias));
  EXPECT_EQ(alias, FileType::MOSTLY_Q3_K_M);
  FileType unused;
  for (const char* bad : {"", "Q4_K_X", "IQ2_XXS", "q8", "Q4_0 "}) {
    EXPECT_FALSE(ParseFileType(bad, &unused)) << bad;
  }
}

}  // namespace
}  // namespace rocmforge::quant
