// Prefix reuse: hash chain, sharing between sequences, LRU eviction of
// unreferenced blocks and the exact-token check behind every hash hit.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <span>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/kv/prefix_cache.h"
#include "gtest/gtest.h"

namespace rocmforge::kv {
namespace {

std::vector<int32_t> RandomTokens(std::mt19937& rng, int n, int vocab = 1000) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Simulates a sequence computing all of `tokens`: reserve, then register.
void ComputeAll(KvCacheManager& kv, uint64_t seq, const std::vector<int32_t>& tokens) {
  const int32_t cached = kv.Open(seq, tokens);
  ASSERT_LE(cached, static_cast<int32_t>(tokens.size()) - 1);
  ASSERT_TRUE(kv.Reserve(seq, static_cast<int32_t>(tokens.size())));
  kv.CommitComputed(seq, tokens, static_cast<int32_t>(tokens.size()));
}

TEST(PrefixHash, ChainsOverTheParent) {
  std::mt19937 rng(3);
  const auto a = RandomTokens(rng, 16), b = RandomTokens(rng, 16);
  EXPECT_EQ(HashBlockTokens(kRootHash, a), HashBlockTokens(kRootHash, a));
  EXPECT_NE(HashBlockTokens(kRootHash, a), HashBlockTokens(kRootHash, b));
  const uint64_t ha = HashBlockTokens(kRootHash, a);
  // Same block content after a different prefix is a different key.
  EXPECT_NE(HashBlockTokens(ha, b), HashBlockTokens(kRootHash, b));
  // Order matters, and a single changed token changes the key.
  auto a2 = a;
  std::swap(a2[0], a2[1]);
  if (a2 != a) {
    EXPECT_NE(HashBlockTokens(kRootHash, a2), ha);
  }
  auto a3 = a;
  a3[15] ^= 1;
  EXPECT_NE(HashBlockTokens(kRootHash, a3), ha);
}

TEST(PrefixCache, SecondSequenceSharesTheFullBlocks) {
  std::mt19937 rng(11);
  const int32_t bs = 16;
  KvCacheManager kv(64, bs, true);
  const auto prompt = RandomTokens(rng, 5 * bs + 7);  // 5 full blocks + 7
  ComputeAll(kv, 1, prompt);
  EXPECT_EQ(kv.num_cached_blocks(), 5);

  // Same prompt plus a different tail: 5 blocks reused, read-only, shared.
  auto other = prompt;
  other.resize(5 * bs + 3);
  for (int i = 0; i < 20; ++i) other.push_back(static_cast<int32_t>(rng() % 1000));
  EXPECT_EQ(kv.PeekCachedPrefix(other), 5 * bs);
  EXPECT_EQ(kv.Open(2, other), 5 * bs);
  const auto& t1 = kv.block_table(1);
  const auto& t2 = kv.block_table(2);
  ASSERT_EQ(t2.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(t2[i], t1[i]);
    EXPECT_EQ(kv.ref_count(t1[i]), 2);
  }
  // The partly filled 6th block of seq 1 is never shared.
  EXPECT_EQ(kv.ref_count(t1[5]), 1);
  ASSERT_TRUE(kv.Reserve(2, static_cast<int32_t>(other.size())));
  EXPECT_NE(kv.block_table(2)[5], t1[5]);
}

TEST(PrefixCache, NeverReturnsTheWholePrompt) {
  std::mt19937 rng(12);
  const int32_t bs = 8;
  KvCacheManager kv(32, bs, true);
  const auto prompt = RandomTokens(rng, 4 * bs);  // exactly 4 blocks
  ComputeAll(kv, 1, prompt);
  EXPECT_EQ(kv.num_cached_blocks(), 4);
  // All 4 blocks are cached, but the last token must be computed: 3 blocks.
  EXPECT_EQ(kv.Open(2, prompt), 3 * bs);
  const std::vector<int32_t> one(prompt.begin(), prompt.begin() + 1);
  EXPECT_EQ(kv.Open(3, one), 0);
  const std::vector<int32_t> block_plus_one(prompt.begin(), prompt.begin() + bs + 1);
  EXPECT_EQ(kv.Open(4, block_plus_one), bs);
}

TEST(PrefixCache, SameBlockAfterDifferentPrefixIsNotReused) {
  std::mt19937 rng(13);
  const int32_t bs = 4;
  KvCacheManager kv(32, bs, true);
  const auto x = RandomTokens(rng, bs), y = RandomTokens(rng, bs), z = RandomTokens(rng, bs);
  std::vector<int32_t> a = x;  // x y z
  a.insert(a.end(), y.begin(), y.end());
  a.insert(a.end(), z.begin(), z.end());
  a.push_back(1);
  ComputeAll(kv, 1, a);
  std::vector<int32_t> b = y;  // y z ... : blocks equal to a's 2nd/3rd, other parent
  b.insert(b.end(), z.begin(), z.end());
  b.push_back(1);
  EXPECT_EQ(kv.Open(2, b), 0);
  std::vector<int32_t> c = x;  // x z ... : first block matches only
  c.insert(c.end(), z.begin(), z.end());
  c.push_back(1);
  EXPECT_EQ(kv.Open(3, c), bs);
}

TEST(PrefixCache, DisabledCacheReusesNothing) {
  std::mt19937 rng(14);
  KvCacheManager kv(32, 4, false);
  const auto p = RandomTokens(rng, 21);
  ComputeAll(kv, 1, p);
  EXPECT_EQ(kv.num_cached_blocks(), 0);
  EXPECT_EQ(kv.Open(2, p), 0);
  kv.Close(1);
  kv.Close(2);
  EXPECT_EQ(kv.num_free_blocks(), 32);
}

TEST(PrefixCache, UnreferencedBlocksStayUntilEvictedLeastRecentlyUsedFirst) {
  std::mt19937 rng(15);
  const int32_t bs = 4, kBlocks = 8;
  KvCacheManager kv(kBlocks, bs, true);
  const auto a = RandomTokens(rng, 3 * bs + 1);  // 3 cached blocks + 1 partial
  const auto b = RandomTokens(rng, 3 * bs + 1);
  ComputeAll(kv, 1, a);
  ComputeAll(kv, 2, b);
  EXPECT_EQ(kv.num_free_blocks(), 0);
  kv.Close(1);  // a's 3 cached blocks are parked, its partial block is freed
  kv.Close(2);
  EXPECT_EQ(kv.num_free_blocks(), kBlocks);
  EXPECT_EQ(kv.num_cached_blocks(), 6);
  EXPECT_EQ(kv.PeekCachedPrefix(a), 3 * bs);
  EXPECT_EQ(kv.PeekCachedPrefix(b), 3 * bs);

  // Touch a (reuse and release it): b is now least recently used.
  EXPECT_EQ(kv.Open(3, a), 3 * bs);
  kv.Close(3);

  // 2 free blocks + 1 eviction: the victim is b's deepest block, so b keeps
  // its first two blocks and a keeps everything.
  ASSERT_TRUE(kv.Reserve(4, 3 * bs));
  EXPECT_EQ(kv.num_cached_blocks(), 5);
  EXPECT_EQ(kv.PeekCachedPrefix(a), 3 * bs);
  EXPECT_EQ(kv.PeekCachedPrefix(b), 2 * bs);
  // Two more: b's remaining blocks go (deepest first) before any of a's.
  ASSERT_TRUE(kv.Reserve(4, 5 * bs));
  EXPECT_EQ(kv.PeekCachedPrefix(b), 0);
  EXPECT_EQ(kv.PeekCachedPrefix(a), 3 * bs);
  // Referenced cached blocks are never evicted.
  EXPECT_EQ(kv.Open(5, a), 3 * bs);
  EXPECT_FALSE(kv.Reserve(4, 6 * bs + 1)) << "only referenced blocks left";
  EXPECT_EQ(kv.PeekCachedPrefix(a), 3 * bs);
}

uint64_t AlwaysCollide(uint64_t, std::span<const int32_t>) { return 42; }

TEST(PrefixCache, HashCollisionIsCaughtByComparingTokens) {
  std::mt19937 rng(16);
  const int32_t bs = 4;
  KvCacheManager kv(16, bs, true, &AlwaysCollide);
  const auto a = RandomTokens(rng, bs + 1);
  auto b = a;
  b[2] += 1;  // same key (42), different content
  ComputeAll(kv, 1, a);
  EXPECT_EQ(kv.num_cached_blocks(), 1);
  EXPECT_EQ(kv.Open(2, b), 0) << "a colliding key must not hand out another prefix's K/V";
  EXPECT_EQ(kv.Open(3, a), bs);

  // Parent check: the same block tokens under another (colliding) parent.
  PrefixCache cache(4, &AlwaysCollide);
  const std::vector<int32_t> blk = {1, 2, 3, 4};
  ASSERT_TRUE(cache.Insert(0, 42, /*parent_hash=*/7, blk));
  EXPECT_EQ(cache.Find(42, 7, blk), 0);
  EXPECT_EQ(cache.Find(42, 8, blk), -1);
  EXPECT_FALSE(cache.Insert(1, 42, 8, blk)) << "key taken: block 1 stays uncached";
  EXPECT_FALSE(cache.Contains(1));
}

TEST(PrefixCache, RandomWorkloadOnlyEverReusesIdenticalContent) {
  // Many sequences over a few shared prefixes on a pool small enough to
  // evict constantly. A shadow record of what each block really holds
  // (written when a sequence computes it) checks every reuse.
  std::mt19937 rng(17);
  const int32_t bs = 3, kBlocks = 40;
  KvCacheManager kv(kBlocks, bs, true);
  std::vector<std::vector<int32_t>> stems;
  for (int i = 0; i < 4; ++i) stems.push_back(RandomTokens(rng, 4 * bs + 1, 5));
  std::map<int32_t, std::vector<int32_t>> content;  // block -> the tokens it holds
  std::map<uint64_t, std::vector<int32_t>> live;
  int64_t reused_tokens = 0;
  for (uint64_t seq = 1; seq <= 400; ++seq) {
    if (live.size() >= 4 || (!live.empty() && rng() % 3 == 0)) {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      kv.Close(it->first);
      live.erase(it);
    }
    auto tokens = stems[rng() % stems.size()];
    tokens.resize(1 + rng() % tokens.size());
    const auto tail = RandomTokens(rng, static_cast<int>(rng() % 8), 5);
    tokens.insert(tokens.end(), tail.begin(), tail.end());
    const int32_t cached = kv.Open(seq, tokens);
    ASSERT_EQ(cached % bs, 0);
    ASSERT_LT(cached, static_cast<int32_t>(tokens.size()));
    reused_tokens += cached;
    const auto& table = kv.block_table(seq);
    for (int32_t i = 0; i < cached / bs; ++i) {
      const std::vector<int32_t> want(tokens.begin() + i * bs, tokens.begin() + (i + 1) * bs);
      ASSERT_EQ(content[table[i]], want) << "reused block " << table[i] << " holds other tokens";
    }
    if (!kv.Reserve(seq, static_cast<int32_t>(tokens.size()))) {
      kv.Close(seq);
      continue;
    }
    // "Compute" the new blocks: record what they now hold.
    for (size_t i = cached / bs; i < table.size(); ++i) {
      const size_t end = std::min(tokens.size(), (i + 1) * bs);
      content[table[i]].assign(tokens.begin() + i * bs, tokens.begin() + end);
    }
    kv.CommitComputed(seq, tokens, static_cast<int32_t>(tokens.size()));
    live[seq] = tokens;

    // Reference counts equal the number of live tables holding each block.
    std::map<int32_t, int32_t> holders;
    for (const auto& [s, t] : live) {
      for (int32_t b : kv.block_table(s)) ++holders[b];
    }
    for (const auto& [b, n] : holders) ASSERT_EQ(kv.ref_count(b), n);
    ASSERT_EQ(kv.num_free_blocks(), kBlocks - static_cast<int32_t>(holders.size()));
  }
  EXPECT_GT(reused_tokens, 0) << "the workload should hit the cache";
}

}  // namespace
}  // namespace rocmforge::kv
