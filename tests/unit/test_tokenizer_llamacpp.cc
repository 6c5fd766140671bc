// Extra reference data from an independent implementation: the ids llama.cpp
// (node-llama-cpp 3.22.1, see shared/peers/README.md) gives for strings that
// stress what the reference cases touch lightly: CR/LF, Unicode whitespace
// (NBSP, U+3000, U+2009, U+2028, U+0085), combining marks, non-ASCII digits,
// upper-case contractions, long digit runs, and special-token spellings with
// parse_special off and on. Same encode call as llama_tokenize(add_special =
// false, parse_special).
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

struct Case {
  const char* text;
  std::vector<TokenId> ids_plain;    // parse_special = false
  std::vector<TokenId> ids_special;  // parse_special = true
};

const Case kLlamaSpm[] = {
    {"hello\r\nworld",
     {2902, 4012, 16, 13, 4025, 282, 326},
     {2902, 4012, 16, 13, 4025, 282, 326}},
    {"x\xC2\xA0\xC2\xA0y z",
     {4008, 4058, 197, 163, 197, 163, 4024, 3759},
     {4008, 4058, 197, 163, 197, 163, 4024, 3759}},
    {"1234567890123",
     {4008, 4063, 4070, 4075, 4081, 4077, 4083, 4080, 4078, 4072, 4068, 4063, 4070, 4075},
     {4008, 4063, 4070, 4075, 4081, 4077, 4083, 4080, 4078, 4072, 4068, 4063, 4070, 4075}},
    {"A\xCC\x81 e\xCC\x88",
     {292, 207, 132, 316, 207, 139},
     {292, 207, 132, 316, 207, 139}},
    {"It'S WE'LL they'D",
     {709, 4042, 4044, 394, 4051, 4042, 3063, 357, 4042, 4039},
     {709, 4042, 4044, 394, 4051, 4042, 3063, 357, 4042, 4039}},
    {"\xD9\xA3\xC2\xBD\xC2\xB2\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93",
     {4008, 220, 166, 197, 192, 197, 181, 242, 191, 148, 242, 191, 149, 242, 191, 150},
     {4008, 220, 166, 197, 192, 197, 181, 242, 191, 148, 242, 191, 149, 242, 191, 150}},
    {"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xE2\x9D\xA4\xEF\xB8\x8F",
     {4008, 243, 162, 148, 144, 243, 162, 146, 192, 229, 160, 167, 242, 187, 146},
     {4008, 243, 162, 148, 144, 243, 162, 146, 192, 229, 160, 167, 242, 187, 146}},
    {"a\xE2\x80\xA8" "b\xC2\x85" "c",
     {261, 229, 131, 171, 4029, 197, 136, 4023},
     {261, 229, 131, 171, 4029, 197, 136, 4023}},
    {"\xE3\x80\x80" "full\xE2\x80\x89width",
     {4008, 230, 131, 131, 4022, 885, 229, 131, 140, 4025, 323, 363},
     {4008, 230, 131, 131, 4022, 885, 229, 131, 140, 4025, 323, 363}},
    {"  \n  b\n\n\n",
     {1607, 13, 4008, 272, 13, 13, 13},
     {1607, 13, 4008, 272, 13, 13, 13}},
    {"tab\t\t\tend",
     {1188, 12, 12, 12, 824},
     {1188, 12, 12, 12, 824}},
    {"<s>hi</s> there",
     {699, 4016, 4071, 433, 4073, 4086, 4016, 4071, 410},
     {1, 286, 4015, 2, 4008, 410}},
    {"<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
     {699, 127, 322, 4085, 325, 499, 127, 4071, 401, 273, 13, 433, 4073, 127, 322, 4085, 824, 127, 4071, 13, 4073, 127, 824, 663, 745, 1532, 127, 4071},
     {699, 127, 322, 4085, 325, 499, 127, 4071, 401, 273, 13, 433, 4073, 127, 322, 4085, 824, 127, 4071, 13, 4073, 127, 824, 663, 745, 1532, 127, 4071}},
    {"zzzz qqqq xxxx",
     {4008, 1631, 1631, 4008, 4064, 4064, 4064, 4064, 4008, 4058, 4058, 4058, 4058},
     {4008, 1631, 1631, 4008, 4064, 4064, 4064, 4064, 4008, 4058, 4058, 4058, 4058}},
};
const Case kQwen2Bpe[] = {
    {"hello\r\nworld",
     {257, 277, 78, 201, 198, 86, 4103},
     {257, 277, 78, 201, 198, 86, 4103}},
    {"x\xC2\xA0\xC2\xA0y z",
     {87, 126, 254, 126, 254, 88, 3903},
     {87, 126, 254, 126, 254, 88, 3903}},
    {"1234567890123",
     {16, 17, 18, 19, 20, 21, 22, 23, 24, 15, 16, 17, 18},
     {16, 17, 18, 19, 20, 21, 22, 23, 24, 15, 16, 17, 18}},
    {"A\xCC\x81 e\xCC\x88",
     {32, 136, 223, 316, 136, 230},
     {32, 136, 223, 316, 136, 230}},
    {"It'S WE'LL they'D",
     {877, 5214, 464, 36, 6, 3115, 353, 6, 35},
     {877, 5214, 464, 36, 6, 3115, 353, 6, 35}},
    {"\xD9\xA3\xC2\xBD\xC2\xB2\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93",
     {149, 96, 126, 121, 126, 110, 171, 120, 239, 171, 120, 240, 171, 120, 241},
     {149, 96, 126, 121, 126, 110, 171, 120, 239, 171, 120, 240, 171, 120, 241}},
    {"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xE2\x9D\xA4\xEF\xB8\x8F",
     {172, 253, 239, 235, 172, 253, 237, 121, 158, 251, 97, 171, 116, 237},
     {172, 253, 239, 235, 172, 253, 237, 121, 158, 251, 97, 171, 116, 237}},
    {"a\xE2\x80\xA8" "b\xC2\x85" "c",
     {64, 158, 222, 101, 65, 126, 227, 66},
     {64, 158, 222, 101, 65, 126, 227, 66}},
    {"\xE3\x80\x80" "full\xE2\x80\x89width",
     {159, 222, 222, 69, 887, 158, 222, 231, 86, 319, 354},
     {159, 222, 222, 69, 887, 158, 222, 231, 86, 319, 354}},
    {"  \n  b\n\n\n",
     {413, 198, 220, 269, 198, 198, 198},
     {413, 198, 220, 269, 198, 198, 198}},
    {"tab\t\t\tend",
     {83, 447, 878, 197, 817},
     {83, 447, 878, 197, 817}},
    {"<s>hi</s> there",
     {27, 82, 29, 428, 27, 14, 82, 29, 403},
     {27, 82, 29, 428, 27, 14, 82, 29, 403}},
    {"<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
     {7779, 317, 62, 321, 496, 7805, 7449, 198, 428, 7779, 317, 62, 817, 91, 1592, 7779, 817, 607, 699, 1541, 7805},
     {8190, 7449, 198, 428, 8191, 198, 8189}},
    {"zzzz qqqq xxxx",
     {1652, 1652, 220, 80, 80, 80, 80, 7605, 87, 87, 87},
     {1652, 1652, 220, 80, 80, 80, 80, 7605, 87, 87, 87}},
};

std::unique_ptr<Tokenizer> Load(const char* name) {
  auto file = gguf::GgufFile::Open(std::string(ROCMFORGE_MODELS_DIR) + "/" + name);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

template <size_t N>
void CheckAll(const char* model, const Case (&cases)[N]) {
  auto tok = Load(model);
  ASSERT_NE(tok, nullptr);
  for (const Case& c : cases) {
    EXPECT_EQ(tok->Encode(c.text, false, /*parse_special=*/false), c.ids_plain) << c.text;
    EXPECT_EQ(tok->Encode(c.text, false, /*parse_special=*/true), c.ids_special) << c.text;
    EXPECT_EQ(tok->Decode(c.ids_plain), c.text);
  }
}

TEST(TokenizerLlamaCpp, LlamaSpmMatchesLlamaCpp) { CheckAll("tiny-llama-spm-f16.gguf", kLlamaSpm); }

TEST(TokenizerLlamaCpp, Qwen2BpeMatchesLlamaCpp) { CheckAll("tiny-qwen2-bpe-f16.gguf", kQwen2Bpe); }

}  // namespace
}  // namespace rocmforge
