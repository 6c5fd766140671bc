// StopMatcher over streamed pieces, against a naive whole-text reference.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/sampling/stop_matcher.h"

namespace rocmforge {
namespace {

// Feeds `pieces` and returns (emitted text, stopped).
std::pair<std::string, bool> Stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher m(stops);
  std::string out;
  for (const auto& p : pieces) out += m.Push(p);
  if (!m.stopped()) out += m.Flush();
  return {out, m.stopped()};
}

TEST(StopMatcherTest, StopSplitAcrossPiecesIsRemoved) {
  auto [out, stopped] = Stream({"\n\n"}, {"Hello", " world\n", "\nmore"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "Hello world");
}

TEST(StopMatcherTest, HoldsBackOnlyPossiblePrefixes) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.Push("abcE"), "abc");  // "E" could start "END"
  EXPECT_EQ(m.Push("N"), "");
  EXPECT_EQ(m.Push("x"), "ENx");     // it did not
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.Push("yEND tail"), "y");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "END");
  EXPECT_EQ(m.Push("more"), "");
}

TEST(StopMatcherTest, EarliestOfSeveralStopsWins) {
  auto [out, stopped] = Stream({"cd", "b"}, {"a", "bcd"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "a");
}

TEST(StopMatcherTest, FlushReleasesHeldTextWithoutStop) {
  StopMatcher m({"<|end|>"});
  EXPECT_EQ(m.Push("text <|en"), "text ");
  EXPECT_EQ(m.Flush(), "<|en");
}

TEST(StopMatcherTest, RandomSplitsMatchWholeTextReference) {
  std::mt19937 rng(42);
  const std::string alphabet = "ab\n";
  for (int iter = 0; iter < 500; ++iter) {
    std::string text;
    const int len = 1 + rng() % 30;
    for (int i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
    std::vector<std::string> stops = {"aab", "\n\n", "ba\n"};
    // Reference: cut at the earliest occurrence of any stop.
    size_t cut = std::string::npos;
    for (const auto& s : stops) cut = std::min(cut, text.find(s));
    const std::string want = cut == std::string::npos ? text : text.substr(0, cut);
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      const size_t n = 1 + rng() % 4;
      pieces.push_back(text.substr(i, n));
      i += n;
    }
    auto [out, stopped] = Stream(stops, pieces);
    EXPECT_EQ(out, want) << "text '" << text << "'";
    EXPECT_EQ(stopped, cut != std::string::npos);
  }
}

}  // namespace
}  // namespace rocmforge
