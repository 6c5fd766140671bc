// BlockPool and the KvCacheManager allocation calls the scheduler relies on,
// checked against a plain reference model on random operations.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/kv_cache_manager.h"
#include "gtest/gtest.h"

namespace rocmforge::kv {
namespace {

TEST(BlockPool, FreshPoolHandsOutEveryBlockOnce) {
  BlockPool pool(37);
  EXPECT_EQ(pool.num_blocks(), 37);
  EXPECT_EQ(pool.num_free(), 37);
  std::set<int32_t> seen;
  for (int i = 0; i < 37; ++i) {
    const int32_t b = pool.Allocate();
    ASSERT_TRUE(pool.valid(b));
    EXPECT_EQ(pool.ref_count(b), 1);
    EXPECT_FALSE(pool.is_free(b));
    EXPECT_TRUE(seen.insert(b).second) << "block " << b << " handed out twice";
  }
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.Allocate(), -1);
}

TEST(BlockPool, EmptyPoolAllocatesNothing) {
  BlockPool pool(0);
  EXPECT_EQ(pool.Allocate(), -1);
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(BlockPool, RandomRefUnrefMatchesReferenceCounts) {
  std::mt19937 rng(1234);
  BlockPool pool(23);
  std::map<int32_t, int32_t> refs;  // the model: blocks in use -> count
  for (int op = 0; op < 5000; ++op) {
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {
      const int32_t b = pool.Allocate();
      if (refs.size() == 23) {
        EXPECT_EQ(b, -1);
      } else {
        ASSERT_GE(b, 0);
        EXPECT_EQ(refs.count(b), 0u) << "allocated a block still in use";
        refs[b] = 1;
      }
    } else if (!refs.empty()) {
      auto it = refs.begin();
      std::advance(it, rng() % refs.size());
      if (kind == 1) {
        pool.Ref(it->first);
        ++it->second;
      } else {
        const int32_t left = pool.Unref(it->first);
        EXPECT_EQ(left, --it->second);
        if (left == 0) {
          pool.Release(it->first);
          refs.erase(it);
        }
      }
    }
    ASSERT_EQ(pool.num_free(), 23 - static_cast<int32_t>(refs.size()));
  }
  for (const auto& [b, n] : refs) EXPECT_EQ(pool.ref_count(b), n);
}

TEST(KvCacheManager, BlocksNeededIsCeilDivMinusHeld) {
  std::mt19937 rng(7);
  for (int32_t bs : {1, 3, 16, 17}) {
    KvCacheManager kv(1000, bs, /*enable_prefix_cache=*/false);
    int32_t held_tokens = 0;
    for (int step = 0; step < 50; ++step) {
      const int32_t want = held_tokens + static_cast<int32_t>(rng() % 40);
      const int32_t have_blocks = (held_tokens + bs - 1) / bs;
      const int32_t want_blocks = (want + bs - 1) / bs;
      ASSERT_EQ(kv.BlocksNeeded(5, want), want_blocks - have_blocks) << "bs " << bs;
      ASSERT_TRUE(kv.Reserve(5, want));
      EXPECT_EQ(static_cast<int32_t>(kv.block_table(5).size()), want_blocks);
      EXPECT_EQ(kv.BlocksNeeded(5, held_tokens), 0) << "shrinking never needs blocks";
      held_tokens = want;
    }
    kv.Close(5);
    EXPECT_EQ(kv.num_free_blocks(), 1000);
  }
}

TEST(KvCacheManager, ReserveIsAllOrNothing) {
  KvCacheManager kv(10, 16, false);
  ASSERT_TRUE(kv.Reserve(1, 16 * 7));
  EXPECT_EQ(kv.num_free_blocks(), 3);
  EXPECT_FALSE(kv.Reserve(2, 16 * 3 + 1));  // needs 4
  EXPECT_EQ(kv.num_free_blocks(), 3);
  EXPECT_TRUE(kv.block_table(2).empty());
  EXPECT_EQ(kv.MaxTokens(2), 3 * 16);
  EXPECT_EQ(kv.MaxTokens(1), 10 * 16);
  EXPECT_TRUE(kv.Reserve(2, 16 * 3));
  EXPECT_EQ(kv.num_free_blocks(), 0);
  EXPECT_FALSE(kv.Reserve(1, 16 * 7 + 1));
}

TEST(KvCacheManager, TablesNeverShareWritableBlocksAndCloseFreesAll) {
  // Random growth and closing of many sequences: every block is held by at
  // most one table (no prefix cache), and the free count always balances.
  std::mt19937 rng(99);
  const int32_t kBlocks = 61, kBs = 5;
  KvCacheManager kv(kBlocks, kBs, false);
  std::map<uint64_t, int32_t> tokens;  // seq -> tokens reserved
  for (int op = 0; op < 3000; ++op) {
    const uint64_t seq = rng() % 12;
    if (rng() % 4 == 0) {
      kv.Close(seq);
      tokens.erase(seq);
    } else {
      const int32_t want = tokens[seq] + static_cast<int32_t>(rng() % 13);
      const bool fits = kv.BlocksNeeded(seq, want) <= kv.num_free_blocks();
      ASSERT_EQ(kv.Reserve(seq, want), fits);
      if (fits) tokens[seq] = want;
    }
    std::set<int32_t> owned;
    int32_t held = 0;
    for (const auto& [s, n] : tokens) {
      const auto& table = kv.block_table(s);
      ASSERT_EQ(static_cast<int32_t>(table.size()), (n + kBs - 1) / kBs);
      for (int32_t b : table) {
        ASSERT_TRUE(owned.insert(b).second) << "block " << b << " in two tables";
        ASSERT_EQ(kv.ref_count(b), 1);
      }
      held += static_cast<int32_t>(table.size());
    }
    ASSERT_EQ(kv.num_free_blocks(), kBlocks - held);
  }
}

}  // namespace
}  // namespace rocmforge::kv
