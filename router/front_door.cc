#include "router/front_door.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace rocmforge::router {

absl::StatusOr<ApiKeys> ApiKeys::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read API keys file '", path, "'"));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view k = absl::StripAsciiWhitespace(line);
    if (k.empty() || k[0] == '#') continue;
    keys.emplace_back(k);
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("API keys file '", path, "' holds no keys (one per line)"));
  }
  return FromKeys(keys);
}

ApiKeys ApiKeys::FromKeys(const std::vector<std::string>& keys) {
  ApiKeys k;
  k.enabled_ = true;
  k.keys_.insert(keys.begin(), keys.end());
  return k;
}

ApiKeys ApiKeys::WithKeys(const std::vector<std::string>& more) const {
  ApiKeys k = *this;
  k.enabled_ = true;
  k.keys_.insert(more.begin(), more.end());
  return k;
}

absl::StatusOr<std::string> ApiKeys::Authenticate(const grpc::ServerContextBase& ctx) const {
  if (!enabled_) return std::string();
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError(
        "missing API key: send metadata 'authorization: Bearer <key>'");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("malformed authorization metadata: expected 'Bearer <key>'");
  }
  value = absl::StripAsciiWhitespace(value);
  if (!keys_.contains(value)) return absl::UnauthenticatedError("unknown API key");
  return std::string(value);
}

std::unique_ptr<ConcurrencyLimiter::Ticket> ConcurrencyLimiter::Acquire(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  int& n = in_flight_[key];
  if (limit_ > 0 && n >= limit_) return nullptr;
  ++n;
  return std::make_unique<Ticket>(this, key);
}

void ConcurrencyLimiter::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_flight_.find(key);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

grpc::Status Admit(const ApiKeys& keys, ConcurrencyLimiter& limiter, grpc::ServerContextBase* ctx,
                   std::unique_ptr<ConcurrencyLimiter::Ticket>* ticket) {
  absl::StatusOr<std::string> key = keys.Authenticate(*ctx);
  if (!key.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(key.status().message()));
  }
  *ticket = limiter.Acquire(*key);
  if (!*ticket) {
    ctx->AddTrailingMetadata("retry-after-ms", std::to_string(kRetryAfterMs));
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("too many concurrent requests for this API key (limit ",
                                     limiter.limit(), "); retry after ", kRetryAfterMs, " ms"));
  }
  return grpc::Status::OK;
}

}  // namespace rocmforge::router
