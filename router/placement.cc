#include "router/placement.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rocmforge::router {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t SplitMix64Finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t StableHash(std::string_view session_id, std::string_view worker_address) {
  uint64_t h = Fnv1a(kFnvOffset, session_id);
  h ^= 0xff;  // separator: ("ab","c") and ("a","bc") must differ
  h *= kFnvPrime;
  h = Fnv1a(h, worker_address);
  return SplitMix64Finalize(h);
}

const char* DecisionLabel(PlacementDecision d) {
  switch (d) {
    case PlacementDecision::kAffinity: return "affinity";
    case PlacementDecision::kSpill: return "spill";
    case PlacementDecision::kLeastLoaded: return "least_loaded";
  }
  return "affinity";
}

std::vector<size_t> RendezvousOrder(std::string_view session_id,
                                    const std::vector<Candidate>& candidates) {
  std::vector<uint64_t> weight(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i)
    weight[i] = StableHash(session_id, candidates[i].address);
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (weight[a] != weight[b]) return weight[a] > weight[b];
    return candidates[a].address < candidates[b].address;
  });
  return order;
}

Placement PlaceSession(std::string_view session_id, const std::vector<Candidate>& candidates,
                       double epsilon) {
  const std::vector<size_t> order = RendezvousOrder(session_id, candidates);
  double total = 1;  // the request being placed
  for (const Candidate& c : candidates) total += std::max(0.0, c.load);
  const double mean = total / static_cast<double>(candidates.size());
  // A worker may take the request if its load afterwards stays within the
  // bound: (1 + eps) x mean, rounded down (so the busiest never exceeds the
  // factor), but never below ceil(mean): with integer loads the least loaded
  // worker always fits under ceil(mean), so some worker is always eligible.
  // kMinBound: at a handful of streams the load signal is mostly noise (each
  // replica sees only its own in-flight calls plus load reports up to a poll
  // old), and spilling there would cost affinity for nothing.
  const double bound = std::max({std::ceil(mean), std::floor((1.0 + std::max(0.0, epsilon)) * mean),
                                 kMinLoadBound});
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const size_t i = order[rank];
    if (std::max(0.0, candidates[i].load) + 1 <= bound) {
      return {i, rank == 0 ? PlacementDecision::kAffinity : PlacementDecision::kSpill};
    }
  }
  // Unreachable with non-negative loads; fall back to the least loaded.
  size_t best = order[0];
  for (size_t i : order)
    if (candidates[i].load < candidates[best].load) best = i;
  return {best, best == order[0] ? PlacementDecision::kAffinity : PlacementDecision::kSpill};
}

Placement PlaceLeastLoadedOfTwo(const std::vector<Candidate>& candidates, uint64_t random_a,
                                uint64_t random_b) {
  const size_t n = candidates.size();
  if (n == 1) return {0, PlacementDecision::kLeastLoaded};
  const size_t a = random_a % n;
  size_t b = random_b % (n - 1);  // a distinct second choice
  if (b >= a) ++b;
  const size_t pick = candidates[b].load < candidates[a].load ? b : a;
  return {pick, PlacementDecision::kLeastLoaded};
}

}  // namespace rocmforge::router
