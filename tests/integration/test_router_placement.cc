// Placement policy: rendezvous hashing with bounded load, and power of two
// choices. Pure functions; checked by their defining properties on random
// session ids and worker sets, not by hard-coded answers.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "router/placement.h"
#include "router/worker_pool.h"

namespace rocmforge::router {
namespace {

std::vector<Candidate> Workers(int n, int first_octet = 1) {
  std::vector<Candidate> c;
  for (int i = 0; i < n; ++i) c.push_back({"10.0.0." + std::to_string(first_octet + i) + ":50061", 0});
  return c;
}

std::string RandomSession(std::mt19937_64& rng) {
  std::string s = "sess-";
  const int len = 1 + static_cast<int>(rng() % 24);
  for (int i = 0; i < len; ++i) s += static_cast<char>('!' + rng() % 90);
  return s;
}

TEST(RouterPlacement, HashIsDeterministicAndSeparatesFields) {
  EXPECT_EQ(StableHash("abc", "w:1"), StableHash("abc", "w:1"));
  EXPECT_NE(StableHash("ab", "cw:1"), StableHash("abc", "w:1"));
  EXPECT_NE(StableHash("abc", "w:1"), StableHash("abc", "w:2"));
}

// Two router replicas see the same workers in different orders (discovery
// order is not guaranteed): every session must still land on the same worker.
TEST(RouterPlacement, ReplicasAgreeWhateverTheCandidateOrder) {
  std::mt19937_64 rng(7);
  std::vector<Candidate> a = Workers(5);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<Candidate> b = a;
    std::shuffle(b.begin(), b.end(), rng);
    const std::string s = RandomSession(rng);
    const Placement pa = PlaceSession(s, a, 0.25);
    const Placement pb = PlaceSession(s, b, 0.25);
    EXPECT_EQ(a[pa.index].address, b[pb.index].address) << s;
    EXPECT_EQ(pa.decision, PlacementDecision::kAffinity);
  }
}

// The rendezvous choice is the worker with the highest StableHash weight.
TEST(RouterPlacement, UnloadedChoiceIsHighestWeight) {
  std::mt19937_64 rng(11);
  std::vector<Candidate> c = Workers(7);
  for (int trial = 0; trial < 300; ++trial) {
    const std::string s = RandomSession(rng);
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i)
      if (StableHash(s, c[i].address) > StableHash(s, c[best].address)) best = i;
    EXPECT_EQ(PlaceSession(s, c, 0.25).index, best);
    EXPECT_EQ(RendezvousOrder(s, c).front(), best);
  }
}

// Removing a worker moves only the sessions that preferred it; adding one
// moves sessions only onto the new worker.
TEST(RouterPlacement, MinimalDisruptionOnMembershipChange) {
  std::mt19937_64 rng(3);
  std::vector<Candidate> four = Workers(4);
  std::vector<Candidate> three(four.begin(), four.begin() + 3);
  int moved_to_new = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const std::string s = RandomSession(rng);
    const std::string before = three[PlaceSession(s, three, 0.25).index].address;
    const std::string after = four[PlaceSession(s, four, 0.25).index].address;
    if (before != after) {
      EXPECT_EQ(after, four[3].address) << s;
      ++moved_to_new;
    }
  }
  // About a quarter of the sessions should move to the new worker.
  EXPECT_GT(moved_to_new, 2000 / 4 - 120);
  EXPECT_LT(moved_to_new, 2000 / 4 + 120);
}

TEST(RouterPlacement, SpreadsSessionsEvenlyWithoutLoad) {
  std::mt19937_64 rng(5);
  std::vector<Candidate> c = Workers(3, 20);
  std::map<size_t, int> count;
  const int n = 6000;
  for (int i = 0; i < n; ++i) ++count[PlaceSession(RandomSession(rng), c, 0.25).index];
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_GT(count[i], n / 3 * 0.9) << c[i].address;
    EXPECT_LT(count[i], n / 3 * 1.1) << c[i].address;
  }
}

// Sessions that stay open: with bounded load (eps = 0.25) the busiest worker
// never carries more than 1.25x the mean (or kMinLoadBound), however the hash falls.
TEST(RouterPlacement, BoundedLoadCapsTheBusiestWorker) {
  for (int workers : {2, 3, 5}) {
    std::mt19937_64 rng(100 + workers);
    std::vector<Candidate> c = Workers(workers);
    int spills = 0;
    for (int i = 0; i < 200; ++i) {
      const std::string s = "session-" + std::to_string(rng());
      Placement p = PlaceSession(s, c, 0.25);
      if (p.decision == PlacementDecision::kSpill) {
        ++spills;
        EXPECT_NE(p.index, RendezvousOrder(s, c).front());
      }
      c[p.index].load += 1;
      double total = 0, busiest = 0;
      for (const Candidate& w : c) {
        total += w.load;
        busiest = std::max(busiest, w.load);
      }
      const double mean = total / workers;
      EXPECT_LE(busiest, std::max({std::ceil(mean), 1.25 * mean, kMinLoadBound})) << "after " << i + 1;
    }
    (void)spills;
  }
}

// A spilled session goes to the next worker in its own hash order.
TEST(RouterPlacement, SpillFollowsTheSessionsHashOrder) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Candidate> c = Workers(4);
    const std::string s = RandomSession(rng);
    const std::vector<size_t> order = RendezvousOrder(s, c);
    c[order[0]].load = 50;  // far over the mean
    const Placement p = PlaceSession(s, c, 0.25);
    EXPECT_EQ(p.index, order[1]);
    EXPECT_EQ(p.decision, PlacementDecision::kSpill);
  }
}

// A little noise in the load signal (a stale report, another replica's
// stream) must not break affinity.
TEST(RouterPlacement, NoSpillBelowTheMinimumBound) {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Candidate> c = Workers(3);
    const std::string s = RandomSession(rng);
    const std::vector<size_t> order = RendezvousOrder(s, c);
    c[order[0]].load = kMinLoadBound - 1;
    EXPECT_EQ(PlaceSession(s, c, 0.25).index, order[0]);
    c[order[0]].load = kMinLoadBound;
    EXPECT_EQ(PlaceSession(s, c, 0.25).index, order[1]);
  }
}

TEST(RouterPlacement, LeastLoadedOfTwoPicksTheLighterOfTwoDistinct) {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 1000; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 6);
    std::vector<Candidate> c = Workers(n);
    for (Candidate& w : c) w.load = static_cast<double>(rng() % 10);
    const uint64_t a = rng(), b = rng();
    const Placement p = PlaceLeastLoadedOfTwo(c, a, b);
    const size_t i = a % n;
    size_t j = b % (n - 1);
    if (j >= i) ++j;
    ASSERT_NE(i, j);
    EXPECT_TRUE(p.index == i || p.index == j);
    EXPECT_EQ(c[p.index].load, std::min(c[i].load, c[j].load));
    EXPECT_EQ(p.decision, PlacementDecision::kLeastLoaded);
  }
  EXPECT_EQ(PlaceLeastLoadedOfTwo(Workers(1), 5, 9).index, 0u);
}

// The load placement sees: each open stream once, whether or not the last
// report has caught up with it.
TEST(RouterPlacement, WorkerLoadCountsEachOpenStreamOnce) {
  Worker w;
  w.in_flight = 5;  // opened before any report
  EXPECT_EQ(w.Load(), 5);
  w.reported_load = 5;  // a report asked for with those 5 open
  w.in_flight_at_report = 5;
  EXPECT_EQ(w.Load(), 5);
  w.in_flight = 8;  // 3 more since that report
  EXPECT_EQ(w.Load(), 8);
  w.reported_load = 12;  // 4 from another router as well
  w.in_flight_at_report = 8;
  EXPECT_EQ(w.Load(), 12);
  w.in_flight = 2;  // 6 of ours closed since: the stale report may not undercount ours
  EXPECT_EQ(w.Load(), 6);
  w.reported_load = 0;  // a report from before anything was open
  w.in_flight_at_report = 0;
  EXPECT_EQ(w.Load(), 2);
}

}  // namespace
}  // namespace rocmforge::router
