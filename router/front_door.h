// Front-door checks for every call: API keys and per-key concurrency limits.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace rocmforge::router {

// Keys come from a file, one per line; blank lines and lines starting with '#'
// are ignored, surrounding whitespace is trimmed.
class ApiKeys {
 public:
  static absl::StatusOr<ApiKeys> FromFile(const std::string& path);
  static ApiKeys FromKeys(const std::vector<std::string>& keys);
  ApiKeys() = default;  // no keys: authentication off

  bool enabled() const { return enabled_; }
  // This set plus `more` (authentication on).
  ApiKeys WithKeys(const std::vector<std::string>& more) const;
  // The caller's key from "authorization: Bearer KEY". With keys off, "" for
  // everyone. UNAUTHENTICATED when the header is missing, malformed or unknown.
  absl::StatusOr<std::string> Authenticate(const grpc::ServerContextBase& ctx) const;

 private:
  bool enabled_ = false;
  absl::flat_hash_set<std::string> keys_;
};

// At most `limit` calls in flight per key (0 = unlimited). Acquire returns a
// ticket that releases its slot when destroyed, or null when the key is at its limit.
class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(int limit) : limit_(limit) {}
  class Ticket {
   public:
    Ticket(ConcurrencyLimiter* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    ~Ticket() { owner_->Release(key_); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    ConcurrencyLimiter* owner_;
    std::string key_;
  };
  std::unique_ptr<Ticket> Acquire(const std::string& key);
  int limit() const { return limit_; }

 private:
  void Release(const std::string& key);
  int limit_;
  std::mutex mu_;
  std::map<std::string, int> in_flight_;
};

// Milliseconds a client told RESOURCE_EXHAUSTED should wait before retrying
// (sent as the "retry-after-ms" trailer and in the message).
inline constexpr int kRetryAfterMs = 250;

// Authenticates and takes a concurrency slot. On failure returns the status to
// finish the call with (adding the retry trailer to `ctx` when over the limit).
grpc::Status Admit(const ApiKeys& keys, ConcurrencyLimiter& limiter, grpc::ServerContextBase* ctx,
                   std::unique_ptr<ConcurrencyLimiter::Ticket>* ticket);

}  // namespace rocmforge::router
