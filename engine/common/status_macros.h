// Status plumbing used across the engine. Errors travel as absl::Status with a
// message a person can act on; these macros keep the happy path readable.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RF_CONCAT_INNER_(a, b) a##b
#define RF_CONCAT_(a, b) RF_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RF_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status rf_status_ = (expr);           \
    if (!rf_status_.ok()) return rf_status_;      \
  } while (0)

// `RF_ASSIGN_OR_RETURN(auto x, MakeX());` assigns the value of an
// absl::StatusOr or returns its error.
#define RF_ASSIGN_OR_RETURN(lhs, expr) \
  RF_ASSIGN_OR_RETURN_IMPL_(RF_CONCAT_(rf_statusor_, __LINE__), lhs, expr)
#define RF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
