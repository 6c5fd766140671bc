// Placement: which worker gets a request. Pure functions of their inputs, so
// every router replica that sees the same workers and loads makes the same
// choice with no shared state.
//
// With a session id: rendezvous (highest random weight) hashing. Each worker's
// weight is StableHash(session, address); the session's preference order is the
// workers sorted by weight. Bounded load: the first worker in that order whose
// load stays within (1 + epsilon) x the mean (counting the new request; never
// below kMinLoadBound) takes it; the preferred worker taking it is an
// "affinity" decision, a later one a "spill". Removing a worker only moves the
// sessions that preferred it.
//
// Without a session id: power of two random choices, the less loaded wins.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rocmforge::router {

// A fixed 64-bit mix (FNV-1a over both strings with a separator, then the
// splitmix64 finalizer). Stable across processes, builds and machines.
uint64_t StableHash(std::string_view session_id, std::string_view worker_address);

// No worker spills while it would carry at most this many requests.
inline constexpr double kMinLoadBound = 4;

struct Candidate {
  std::string address;
  double load = 0;  // open streams: the last load report plus this router's change since
};

enum class PlacementDecision { kAffinity, kSpill, kLeastLoaded };
const char* DecisionLabel(PlacementDecision d);  // metrics label value

struct Placement {
  size_t index = 0;  // into the candidates
  PlacementDecision decision = PlacementDecision::kAffinity;
};

// Candidate indices in the session's rendezvous order (highest weight first;
// ties broken by address, so the order never depends on the input order).
std::vector<size_t> RendezvousOrder(std::string_view session_id,
                                    const std::vector<Candidate>& candidates);

// Bounded-load rendezvous placement. `candidates` must not be empty.
Placement PlaceSession(std::string_view session_id, const std::vector<Candidate>& candidates,
                       double epsilon);

// Power of two choices: `random_a`, `random_b` are two random draws (the caller
// owns the generator, which keeps this function pure). `candidates` non-empty.
Placement PlaceLeastLoadedOfTwo(const std::vector<Candidate>& candidates, uint64_t random_a,
                                uint64_t random_b);

}  // namespace rocmforge::router
