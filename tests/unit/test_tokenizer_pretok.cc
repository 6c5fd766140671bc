// The three pre-tokenizer regexes split text the way the Hugging Face regexes
// do. Expected splits are worked out by hand from the patterns (alternatives
// tried left to right, greedy quantifiers with backtracking).
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/pretokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

using Words = std::vector<std::string>;

Words Split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::Create(pre);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return {};
  Words out;
  std::string joined;
  for (std::string_view w : (*p)->Split(text)) {
    out.emplace_back(w);
    joined += w;
  }
  EXPECT_EQ(joined, text) << "the words must cover the text exactly";
  return out;
}

TEST(PreTokenizerGpt2, ContractionsAreCaseSensitive) {
  EXPECT_EQ(Split("gpt-2", "I'm don't"), (Words{"I", "'m", " don", "'t"}));
  EXPECT_EQ(Split("gpt-2", "WE'LL"), (Words{"WE", "'", "LL"}));
}

TEST(PreTokenizerGpt2, NumbersStayWholeWithOptionalSpace) {
  EXPECT_EQ(Split("gpt-2", "abc 12345 x"), (Words{"abc", " 12345", " x"}));
  EXPECT_EQ(Split("default", "3.14"), (Words{"3", ".", "14"}));
}

TEST(PreTokenizerGpt2, WhitespaceRunsLeaveOneSpaceForTheNextWord) {
  EXPECT_EQ(Split("gpt-2", "hello   world"), (Words{"hello", "  ", " world"}));
  EXPECT_EQ(Split("gpt-2", "a\n\nb"), (Words{"a", "\n", "\n", "b"}));
  EXPECT_EQ(Split("gpt-2", "x  "), (Words{"x", "  "}));
  EXPECT_EQ(Split("gpt-2", "  !!?"), (Words{" ", " !!?"}));
}

TEST(PreTokenizerGpt2, UnicodeLetters) {
  EXPECT_EQ(Split("gpt-2", "h\xC3\xA9llo w\xC3\xB6rld"), (Words{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  // Japanese letters form one word; emoji are "other" symbols.
  EXPECT_EQ(Split("gpt-2", "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82\xF0\x9F\x9A\x80"),
            (Words{"\xE6\x97\xA5\xE6\x9C\xAC", " \xF0\x9F\x99\x82\xF0\x9F\x9A\x80"}));
}

TEST(PreTokenizerLlama3, ContractionsAnyCase) {
  EXPECT_EQ(Split("llama-bpe", "I'M don'T we'll"), (Words{"I", "'M", " don", "'T", " we", "'ll"}));
}

TEST(PreTokenizerLlama3, NumbersInGroupsOfThree) {
  EXPECT_EQ(Split("llama-bpe", "1234567"), (Words{"123", "456", "7"}));
  EXPECT_EQ(Split("llama3", "x 12345"), (Words{"x", " ", "123", "45"}));
}

TEST(PreTokenizerLlama3, PunctuationAndNewlines) {
  EXPECT_EQ(Split("llama-bpe", "(hello)"), (Words{"(hello", ")"}));
  EXPECT_EQ(Split("llama-bpe", "a\n\nb"), (Words{"a", "\n\n", "b"}));
  EXPECT_EQ(Split("llama-bpe", "x.\n\ny"), (Words{"x", ".\n\n", "y"}));
  EXPECT_EQ(Split("llama-bpe", "  $100"), (Words{" ", " $", "100"}));
  EXPECT_EQ(Split("llama-bpe", "hello   world"), (Words{"hello", "  ", " world"}));
}

TEST(PreTokenizerQwen2, SingleDigits) {
  EXPECT_EQ(Split("qwen2", "numbers 12345"), (Words{"numbers", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(Split("qwen2", "1999-2024"),
            (Words{"1", "9", "9", "9", "-", "2", "0", "2", "4"}));
}

TEST(PreTokenizerQwen2, LettersWithLeadingSymbol) {
  EXPECT_EQ(Split("qwen2", "don't won't"), (Words{"don", "'t", " won", "'t"}));
  EXPECT_EQ(Split("qwen2", "\ttab\tseparated"), (Words{"\ttab", "\tseparated"}));
  EXPECT_EQ(Split("qwen2", "caf\xC3\xA9 na\xC3\xAFve"), (Words{"caf\xC3\xA9", " na\xC3\xAFve"}));
  EXPECT_EQ(Split("qwen2", "trailing   "), (Words{"trailing", "   "}));
}

TEST(PreTokenizer, InvalidUtf8BecomesItsOwnWord) {
  for (const char* pre : {"gpt-2", "llama-bpe", "qwen2"}) {
    EXPECT_EQ(Split(pre, "ab\xFF" "cd"), (Words{"ab", "\xFF", "cd"})) << pre;
    Split(pre, "\xC3");             // truncated character alone
    Split(pre, "\xE6\x97 x \x80");  // checks coverage only
  }
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  auto p = PreTokenizer::Create("no-such-pre");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("no-such-pre"), std::string::npos);
  EXPECT_FALSE(PreTokenizer::FromPattern("(unclosed").ok());
}

}  // namespace
}  // namespace rocmforge
