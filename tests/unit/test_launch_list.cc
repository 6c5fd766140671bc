// The GPU backend's step recording (engine/backend/gpu/launch_list.h): the
// signature bytes and the deferred closures. Plain C++, so it runs in the CPU
// suite; the GPU tests run the graphs built from them.
#include "engine/backend/gpu/launch_list.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace rocmforge {
namespace {

TEST(SigBuf, HoldsTheTagThenEachArgumentsBytes) {
  const int64_t rows = 4096;
  const float eps = 1e-5f;
  const void* p = &rows;
  const SigBuf s = SigBuf::Of(17, rows, eps, p);
  EXPECT_EQ(s.tag(), 17);
  ASSERT_EQ(s.view().size(), sizeof(int) + sizeof(rows) + sizeof(eps) + sizeof(p));
  std::string want(sizeof(int) + sizeof(rows) + sizeof(eps) + sizeof(p), '\0');
  const int tag = 17;
  size_t at = 0;
  for (const auto& [src, n] : {std::pair<const void*, size_t>{&tag, sizeof(tag)}, {&rows, sizeof(rows)},
                               {&eps, sizeof(eps)}, {&p, sizeof(p)}}) {
    std::memcpy(want.data() + at, src, n);
    at += n;
  }
  EXPECT_EQ(s.view(), want);
}

TEST(SigBuf, ConcatenationKeepsTheFirstTagAndBothByteRuns) {
  const SigBuf a = SigBuf::Of(3, int64_t{1});
  const SigBuf b = SigBuf::Of(9, int32_t{2}, int32_t{5});
  const SigBuf ab = a + b;
  EXPECT_EQ(ab.tag(), 3);
  EXPECT_EQ(ab.view(), std::string(a.view()) + std::string(b.view()));
  SigBuf c;
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.tag(), 0);
  c += b;
  EXPECT_EQ(c.view(), b.view());
  // Different arguments, different bytes (what tells two graphs apart).
  EXPECT_NE(SigBuf::Of(3, int64_t{1}).view(), SigBuf::Of(3, int64_t{2}).view());
}

TEST(LaunchList, RunsClosuresInOrderAcrossChunksAndRuns) {
  LaunchList list;
  std::vector<int> order;
  // Enough closures of ~1 KB for several 16 KB chunks.
  for (int i = 0; i < 200; ++i) {
    std::array<int, 256> payload{};
    payload[255] = i;
    list.Add([&order, payload] { order.push_back(payload[255]); });
  }
  EXPECT_EQ(list.size(), 200u);
  list.RunAll();
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  // Cleared and refilled (the chunks reused): only the new closures run.
  list.Clear();
  EXPECT_TRUE(list.empty());
  order.clear();
  for (int i = 0; i < 3; ++i) list.Add([&order, i] { order.push_back(100 + i); });
  list.RunAll();
  EXPECT_EQ(order, (std::vector<int>{100, 101, 102}));
}

TEST(LaunchList, TakesClosuresLargerThanAChunkAndOnesWithDestructors) {
  auto alive = std::make_shared<int>(0);
  int ran = 0;
  {
    LaunchList list;
    list.Add([alive, &ran] { ran += 1; });  // holds a reference: destroyed by Clear / the destructor
    std::array<char, 40000> big{};
    big[39999] = 7;
    list.Add([big, &ran] { ran += big[39999]; });  // past one 16 KB chunk
    list.Add([s = std::string(100, 'x'), &ran] { ran += static_cast<int>(s.size()); });
    EXPECT_EQ(alive.use_count(), 2);
    list.RunAll();
    EXPECT_EQ(ran, 1 + 7 + 100);
    list.Clear();
    EXPECT_EQ(alive.use_count(), 1);
    list.Add([alive] {});
    EXPECT_EQ(alive.use_count(), 2);
  }
  EXPECT_EQ(alive.use_count(), 1);  // the destructor destroyed what was left
}

TEST(LaunchList, SwapExchangesClosures) {
  LaunchList a, b;
  int x = 0;
  a.Add([&x] { x += 1; });
  a.Add([&x] { x += 10; });
  b.Add([&x] { x += 100; });
  a.swap(b);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(b.size(), 2u);
  a.RunAll();
  EXPECT_EQ(x, 100);
  b.RunAll();
  EXPECT_EQ(x, 111);
  // After the swap each keeps filling its own (swapped) chunks.
  b.Clear();
  b.Add([&x] { x = -1; });
  b.RunAll();
  EXPECT_EQ(x, -1);
}

}  // namespace
}  // namespace rocmforge
