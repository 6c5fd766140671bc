// Flags shared by `rocmforge router` and `rocmforge serve` for the router part.
#pragma once

#include <set>
#include <string>

#include "absl/status/status.h"
#include "cli/flags.h"
#include "router/router_server.h"

namespace rocmforge::cli {

// The router's value flags (for Flags::Parse).
const std::set<std::string>& RouterValueFlags();

// Fills the front-door, limits and placement fields of `o` from `flags`
// (host, port, metrics-port, TLS, keys, limits, epsilon, refresh).
absl::Status ApplyRouterFlags(const Flags& flags, router::RouterOptions* o);

// Blocks SIGINT and SIGTERM in this thread (call before starting threads, so
// every thread inherits it) and returns when one arrives.
void BlockTerminationSignals();
int WaitForTerminationSignal();

}  // namespace rocmforge::cli
