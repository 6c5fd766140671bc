// The Engine's model-free parts: TokenStream (text, stop conditions, resume)
// on the real llama tokenizer, and KV pool sizing.
#include <random>
#include <string>
#include <vector>

#include "engine/engine_internal.h"
#include "engine/gguf/gguf_file.h"
#include "engine/token_stream_internal.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

StoppingParams MaxTokens(int32_t n) {
  StoppingParams p;
  p.max_tokens = n;
  return p;
}

class TokenStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = gguf::GgufFile::Open(std::string(ROCMFORGE_MODELS_DIR) + "/tiny-llama-spm-f16.gguf");
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(*file);
    auto tok = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(*tok);
  }
  // Pushes ids; returns the concatenated text, each piece and the finish.
  struct Run {
    std::string text;
    std::vector<std::string> pieces;
    FinishReason finish = FinishReason::kNone;
    size_t consumed = 0;
  };
  Run Feed(TokenStream& s, const std::vector<TokenId>& ids, int32_t prompt_len = 5) {
    Run r;
    for (TokenId id : ids) {
      ++r.consumed;
      auto out = s.Push(id, prompt_len + s.generated() + 1);
      r.pieces.push_back(out.text);
      r.text += out.text;
      if (out.finish != FinishReason::kNone) {
        r.finish = out.finish;
        break;
      }
    }
    return r;
  }
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TokenStreamTest, TextMatchesWholeDecodeAndMaxTokensEndsIt) {
  const auto ids = tok_->Encode("And God said, Let there be light: and there was light.", false);
  ASSERT_GT(ids.size(), 8u);
  StoppingParams stop;
  stop.max_tokens = static_cast<int32_t>(ids.size());
  TokenStream s(*tok_, stop, 1000);
  const Run r = Feed(s, ids);
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.consumed, ids.size());
  // Generated text continues a prompt: the first piece keeps its space.
  EXPECT_EQ(r.text, tok_->Decode(ids, /*skip_leading_space=*/false));
  TokenStream shorter(*tok_, MaxTokens(3), 1000);
  EXPECT_EQ(Feed(shorter, ids).consumed, 3u);
}

TEST_F(TokenStreamTest, EosStopsUnlessIgnoredAndGivesNoText) {
  const TokenId eos = tok_->vocab().eos;
  ASSERT_GE(eos, 0);
  auto ids = tok_->Encode("In the beginning", false);
  ids.push_back(eos);
  ids.push_back(ids[0]);
  TokenStream s(*tok_, StoppingParams{}, 1000);
  const Run r = Feed(s, ids);
  EXPECT_EQ(r.finish, FinishReason::kEos);
  EXPECT_EQ(r.consumed, ids.size() - 1);
  EXPECT_EQ(r.pieces.back(), "");
  StoppingParams ignore;
  ignore.ignore_eos = true;
  TokenStream t(*tok_, ignore, 1000);
  const Run all = Feed(t, ids);
  EXPECT_EQ(all.finish, FinishReason::kNone);
  EXPECT_EQ(all.consumed, ids.size());
}

TEST_F(TokenStreamTest, StopTokenIdsAndContextLimit) {
  const auto ids = tok_->Encode("the LORD spake unto Moses, saying", false);
  StoppingParams stop;
  stop.stop_token_ids = {ids[3]};
  TokenStream s(*tok_, stop, 1000);
  const Run r = Feed(s, ids);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(r.text, tok_->Decode({ids[0], ids[1], ids[2]}, false));
  // prompt 5 + 3 generated reaches a context of 8: no room for another token.
  TokenStream c(*tok_, StoppingParams{}, 8);
  const Run rc = Feed(c, ids, 5);
  EXPECT_EQ(rc.finish, FinishReason::kLength);
  EXPECT_EQ(rc.consumed, 3u);
}

TEST_F(TokenStreamTest, StopStringAcrossTokensIsCutAndNeverEmitted) {
  const auto ids = tok_->Encode("and the LORD said unto Moses, Go in unto Pharaoh", false);
  const std::string full = tok_->Decode(ids, false);
  for (const std::string stop : {"said unto", "D s", "Pharaoh", "unto M"}) {
    ASSERT_NE(full.find(stop), std::string::npos) << stop;
    StoppingParams p;
    p.stop_strings = {stop, "never appears"};
    TokenStream s(*tok_, p, 1000);
    const Run r = Feed(s, ids);
    EXPECT_EQ(r.finish, FinishReason::kStop) << stop;
    EXPECT_EQ(r.text, full.substr(0, full.find(stop))) << stop;
  }
}

TEST_F(TokenStreamTest, PartialUtf8IsHeldBackUntilComplete) {
  // "€" is E2 82 AC: three byte-fallback tokens.
  std::vector<TokenId> ids;
  for (const char* piece : {"<0xE2>", "<0x82>", "<0xAC>"}) {
    ids.push_back(tok_->Find(piece));
    ASSERT_GE(ids.back(), 0) << piece;
  }
  TokenStream s(*tok_, StoppingParams{}, 1000);
  const Run r = Feed(s, ids);
  EXPECT_EQ(r.pieces, (std::vector<std::string>{"", "", "\xE2\x82\xAC"}));
  // Cut off mid-character by max_tokens: the broken bytes become U+FFFD.
  TokenStream cut(*tok_, MaxTokens(2), 1000);
  EXPECT_EQ(Feed(cut, ids).text, "\xEF\xBF\xBD");
}

TEST_F(TokenStreamTest, ReplayContinuesAsIfNeverInterrupted) {
  const auto ids = tok_->Encode("For God so loved the world, that he gave \xE2\x82\xAC his only", false);
  StoppingParams p;
  p.stop_strings = {"gave"};
  p.max_tokens = 100;
  TokenStream whole(*tok_, p, 1000);
  const Run ref = Feed(whole, ids);
  ASSERT_EQ(ref.finish, FinishReason::kStop);
  for (size_t k = 1; k < ref.consumed; ++k) {
    TokenStream resumed(*tok_, p, 1000);
    resumed.Replay(std::span<const TokenId>(ids).first(k));
    EXPECT_EQ(resumed.generated(), static_cast<int32_t>(k));
    const Run rest = Feed(resumed, std::vector<TokenId>(ids.begin() + k, ids.end()));
    std::string sent;
    for (size_t i = 0; i < k; ++i) sent += ref.pieces[i];
    EXPECT_EQ(sent + rest.text, ref.text) << "k = " << k;
    EXPECT_EQ(rest.finish, FinishReason::kStop);
  }
  // max_tokens counts replayed tokens.
  StoppingParams four;
  four.max_tokens = 4;
  TokenStream r4(*tok_, four, 1000);
  r4.Replay(std::span<const TokenId>(ids).first(3));
  EXPECT_EQ(Feed(r4, std::vector<TokenId>(ids.begin() + 3, ids.end())).consumed, 1u);
}

TEST(EngineSizing, DefaultContextIsTrainingContextCappedAt8192) {
  EXPECT_EQ(DefaultContextLength(2048), 2048);
  EXPECT_EQ(DefaultContextLength(131072), 8192);
  EXPECT_EQ(DefaultContextLength(0), 8192);
}

TEST(EngineSizing, KvPoolFromMemoryFractionCapAndExplicitBlocks) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    EngineOptions o;
    o.kv_block_size = 1 + static_cast<int32_t>(rng() % 64);
    o.max_running = 1 + static_cast<int32_t>(rng() % 100);
    o.kv_memory_fraction = 0.05 + 0.95 * static_cast<double>(rng() % 1000) / 1000.0;
    o.kv_memory_cap_bytes = rng() % 2 ? static_cast<int64_t>(rng() % (1ull << 34)) : 0;
    const size_t avail = static_cast<size_t>(rng() % (1ull << 36));
    const size_t per_token = 1 + rng() % 200000;
    const int32_t ctx = 2 + static_cast<int32_t>(rng() % 10000);
    // Independent arithmetic, in long double.
    long double bytes = static_cast<long double>(avail) * o.kv_memory_fraction;
    if (o.kv_memory_cap_bytes > 0) bytes = std::min<long double>(bytes, o.kv_memory_cap_bytes);
    int64_t want = static_cast<int64_t>(bytes / (static_cast<long double>(per_token) * o.kv_block_size));
    const int64_t per_ctx = (ctx + o.kv_block_size - 1) / o.kv_block_size;
    want = std::min<int64_t>(want, (o.max_running + 1) * per_ctx);
    const auto got = SizeKvPool(o, avail, per_token, ctx);
    if (std::min<int64_t>(want * o.kv_block_size, ctx) < 2) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.status();
    // Float rounding may differ by one block at most.
    EXPECT_NEAR(got->num_blocks, want, 1);
    EXPECT_EQ(got->context_length, std::min<int64_t>(ctx, int64_t{got->num_blocks} * o.kv_block_size));
  }
  EngineOptions o;
  o.kv_blocks = 7;
  o.kv_block_size = 16;
  auto fixed = SizeKvPool(o, 0, 1000, 4096);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->num_blocks, 7);
  EXPECT_EQ(fixed->context_length, 112);
  o.kv_blocks = 0;
  const auto none = SizeKvPool(o, 1000, 1000, 4096);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("KV cache too small"), std::string::npos);
}

}  // namespace
}  // namespace rocmforge
