#include "router/router_core.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/placement.h"

namespace rocmforge::router {
namespace {

uint64_t RandomDraw() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::StatusOr<Chosen> RouterCore::Choose(const std::string& session_id, const std::string& model,
                                          const std::set<std::string>& exclude) const {
  std::vector<WorkerHandle> usable = pool->Usable();
  std::vector<WorkerHandle> eligible;
  std::set<std::string> served;
  for (const WorkerHandle& w : usable) {
    const std::string m = w->Model();
    served.insert(m);
    if (!model.empty() && !m.empty() && m != model) continue;
    if (exclude.count(w->address)) continue;
    eligible.push_back(w);
  }
  if (eligible.empty()) {
    if (!model.empty() && !usable.empty()) {
      bool any_serves = false;
      for (const WorkerHandle& w : usable) any_serves |= w->Model().empty() || w->Model() == model;
      if (!any_serves) {
        return absl::InvalidArgumentError(absl::StrCat("model '", model,
                                                       "' is not served here; served: ",
                                                       absl::StrJoin(served, ", ")));
      }
    }
    const size_t known = pool->All().size();
    if (!exclude.empty() && !usable.empty()) {
      return absl::UnavailableError(absl::StrCat(
          "every usable worker already failed this request (", exclude.size(), " tried)"));
    }
    return absl::UnavailableError(absl::StrCat("no healthy worker (", known,
                                               " known, none serving and not draining)"));
  }
  std::vector<Candidate> candidates;
  candidates.reserve(eligible.size());
  for (const WorkerHandle& w : eligible) candidates.push_back({w->address, w->Load()});
  Placement p = session_id.empty()
                    ? PlaceLeastLoadedOfTwo(candidates, RandomDraw(), RandomDraw())
                    : PlaceSession(session_id, candidates, load_epsilon);
  return Chosen{eligible[p.index], DecisionLabel(p.decision)};
}

}  // namespace rocmforge::router
