// The ggml type table against ggml's block structs (ggml-common.h sizes) and
// the enum's holes.
#include <string>

#include "engine/gguf/ggml_types.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

TEST(GgmlTypes, BlockGeometryMatchesGgml) {
  struct Want {
    GgmlType t;
    int64_t block;
    size_t bytes;
    bool quantized, supported;
  };
  const Want want[] = {
      {GgmlType::F32, 1, 4, false, true},          {GgmlType::F16, 1, 2, false, true},
      {GgmlType::BF16, 1, 2, false, true},         {GgmlType::Q4_0, 32, sizeof(BlockQ4_0), true, true},
      {GgmlType::Q4_1, 32, sizeof(BlockQ4_1), true, true}, {GgmlType::Q5_0, 32, sizeof(BlockQ5_0), true, true},
      {GgmlType::Q5_1, 32, sizeof(BlockQ5_1), true, true}, {GgmlType::Q8_0, 32, sizeof(BlockQ8_0), true, true},
      {GgmlType::Q8_1, 32, sizeof(BlockQ8_1), true, true}, {GgmlType::Q2_K, 256, sizeof(BlockQ2_K), true, true},
      {GgmlType::Q3_K, 256, sizeof(BlockQ3_K), true, true}, {GgmlType::Q4_K, 256, sizeof(BlockQ4_K), true, true},
      {GgmlType::Q5_K, 256, sizeof(BlockQ5_K), true, true}, {GgmlType::Q6_K, 256, sizeof(BlockQ6_K), true, true},
      {GgmlType::Q8_K, 256, sizeof(BlockQ8_K), true, true},
      // Recognised but not computed; sizes of ggml's block_iq* structs.
      {GgmlType::IQ2_XXS, 256, 66, true, false},   {GgmlType::IQ2_XS, 256, 74, true, false},
      {GgmlType::IQ3_XXS, 256, 98, true, false},   {GgmlType::IQ1_S, 256, 50, true, false},
      {GgmlType::IQ4_NL, 32, 18, true, false},     {GgmlType::IQ3_S, 256, 110, true, false},
      {GgmlType::IQ2_S, 256, 82, true, false},     {GgmlType::IQ4_XS, 256, 136, true, false},
      {GgmlType::IQ1_M, 256, 56, true, false},     {GgmlType::I8, 1, 1, false, false},
      {GgmlType::I16, 1, 2, false, false},         {GgmlType::I32, 1, 4, false, false},
      {GgmlType::I64, 1, 8, false, false},         {GgmlType::F64, 1, 8, false, false},
  };
  for (const Want& w : want) {
    const GgmlTypeInfo* info = GetTypeInfo(w.t);
    ASSERT_NE(info, nullptr) << static_cast<int>(w.t);
    SCOPED_TRACE(std::string(info->name));
    EXPECT_EQ(info->block_size, w.block);
    EXPECT_EQ(info->type_size, w.bytes);
    EXPECT_EQ(info->quantized, w.quantized);
    EXPECT_EQ(info->supported, w.supported);
    EXPECT_EQ(TypeName(w.t), info->name);
  }
}

TEST(GgmlTypes, UnknownValuesHaveNoInfo) {
  EXPECT_EQ(GetTypeInfo(4u), nullptr);  // removed Q4_2
  EXPECT_EQ(GetTypeInfo(5u), nullptr);  // removed Q4_3
  EXPECT_EQ(GetTypeInfo(31u), nullptr);
  EXPECT_EQ(GetTypeInfo(0xffffffffu), nullptr);
  EXPECT_EQ(TypeName(static_cast<GgmlType>(77)), "UNKNOWN");
  EXPECT_EQ(RowBytes(static_cast<GgmlType>(4), 32), 0u);
}

TEST(GgmlTypes, ParseTypeNameIsCaseInsensitive) {
  GgmlType t;
  ASSERT_TRUE(ParseTypeName("q4_k", &t));
  EXPECT_EQ(t, GgmlType::Q4_K);
  ASSERT_TRUE(ParseTypeName("F16", &t));
  EXPECT_EQ(t, GgmlType::F16);
  ASSERT_TRUE(ParseTypeName("Bf16", &t));
  EXPECT_EQ(t, GgmlType::BF16);
  ASSERT_TRUE(ParseTypeName("iq2_xxs", &t));
  EXPECT_EQ(t, GgmlType::IQ2_XXS);
  for (uint32_t raw = 0; raw < static_cast<uint32_t>(GgmlType::kCount); ++raw) {
    if (const GgmlTypeInfo* info = GetTypeInfo(raw)) {
      ASSERT_TRUE(ParseTypeName(info->name, &t));
      EXPECT_EQ(static_cast<uint32_t>(t), raw);
    }
  }
  EXPECT_FALSE(ParseTypeName("Q4_K_M", &t));  // a file type, not a tensor type
  EXPECT_FALSE(ParseTypeName("", &t));
  EXPECT_FALSE(ParseTypeName("Q4_", &t));
}

TEST(GgmlTypes, RowBytes) {
  EXPECT_EQ(RowBytes(GgmlType::F32, 7), 28u);
  EXPECT_EQ(RowBytes(GgmlType::F16, 4096), 8192u);
  EXPECT_EQ(RowBytes(GgmlType::Q4_0, 4096), 4096u / 32 * 18);
  EXPECT_EQ(RowBytes(GgmlType::Q4_K, 14336), 14336u / 256 * 144);
  EXPECT_EQ(RowBytes(GgmlType::Q6_K, 256), 210u);
  EXPECT_EQ(RowBytes(GgmlType::Q8_0, 0), 0u);
}

}  // namespace
}  // namespace rocmforge
