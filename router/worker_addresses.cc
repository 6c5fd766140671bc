#include "router/worker_addresses.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rocmforge::router {
namespace {

absl::Status CheckHostPort(absl::string_view entry) {
  const size_t colon = entry.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(entry.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker address '", entry, "' is not HOST:PORT with a port in 1..65535"));
  }
  return absl::OkStatus();
}

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseWorkerList(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (absl::Status s = CheckHostPort(part); !s.ok()) return s;
    out.emplace_back(part);
  }
  if (out.empty()) return absl::InvalidArgumentError("--workers lists no HOST:PORT");
  SortUnique(out);
  return out;
}

absl::StatusOr<DnsTarget> ParseDnsTarget(const std::string& spec) {
  if (absl::Status s = CheckHostPort(spec); !s.ok()) return s;
  const size_t colon = spec.rfind(':');
  DnsTarget t;
  t.name = spec.substr(0, colon);
  (void)absl::SimpleAtoi(spec.substr(colon + 1), &t.port);
  return t;
}

absl::StatusOr<std::vector<std::string>> ResolveWorkers(const DnsTarget& target) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(target.name.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve '", target.name, "': ", gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ai->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(ai->ai_addr);
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
      out.push_back(absl::StrCat(buf, ":", target.port));
    } else if (ai->ai_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
      out.push_back(absl::StrCat("[", buf, "]:", target.port));
    }
  }
  freeaddrinfo(res);
  if (out.empty()) {
    return absl::UnavailableError(absl::StrCat("'", target.name, "' has no addresses"));
  }
  SortUnique(out);
  return out;
}

}  // namespace rocmforge::router
