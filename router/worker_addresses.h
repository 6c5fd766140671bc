// Where the workers are: a static "host:port,host:port" list or a DNS name
// (a Kubernetes headless Service resolves to one address per worker pod).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rocmforge::router {

// Splits "h1:p1,h2:p2" (spaces allowed around commas) into sorted, unique
// "host:port" strings. Every entry must have a host and a numeric port.
absl::StatusOr<std::vector<std::string>> ParseWorkerList(const std::string& list);

struct DnsTarget {
  std::string name;
  int port = 0;
};
// Parses "NAME:PORT".
absl::StatusOr<DnsTarget> ParseDnsTarget(const std::string& spec);

// Resolves `target` with getaddrinfo (IPv4 and IPv6, TCP). Returns sorted,
// unique "ip:port" / "[ip6]:port" strings; an error when the name does not
// resolve (the caller decides whether to keep its previous list).
absl::StatusOr<std::vector<std::string>> ResolveWorkers(const DnsTarget& target);

}  // namespace rocmforge::router
