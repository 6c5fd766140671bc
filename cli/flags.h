// Tiny flag parser for the CLI: "--name value", "--name=value" and boolean
// "--name". Unknown flags and malformed numbers are errors that name the flag.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rocmforge::cli {

class Flags {
 public:
  // `value_flags` take a value, `bool_flags` do not. Positional arguments are
  // collected in order.
  static absl::StatusOr<Flags> Parse(const std::vector<std::string>& args,
                                     const std::set<std::string>& value_flags,
                                     const std::set<std::string>& bool_flags);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& dflt) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t dflt) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double dflt) const;
  // Every occurrence of a repeatable flag (e.g. --stop).
  std::vector<std::string> GetAll(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Prints "rocmforge: <message>" to stderr as one line and returns 1.
int Fail(const std::string& message);

}  // namespace rocmforge::cli
