#include "cli/flags.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rocmforge::cli {

absl::StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args,
                                   const std::set<std::string>& value_flags,
                                   const std::set<std::string>& bool_flags) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') {
      f.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    if (bool_flags.count(name)) {
      if (has_inline) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " takes no value"));
      f.values_.emplace(name, "true");
    } else if (value_flags.count(name)) {
      if (!has_inline) {
        if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
        value = args[++i];
      }
      f.values_.emplace(name, value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return f;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  auto it = values_.equal_range(name);
  if (it.first == it.second) return std::nullopt;
  return std::prev(it.second)->second;  // last occurrence wins
}

std::string Flags::GetOr(const std::string& name, const std::string& dflt) const {
  auto v = Get(name);
  return v ? *v : dflt;
}

absl::StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t dflt) const {
  auto v = Get(name);
  if (!v) return dflt;
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out)) return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", *v, "' is not an integer"));
  return out;
}

absl::StatusOr<double> Flags::GetDouble(const std::string& name, double dflt) const {
  auto v = Get(name);
  if (!v) return dflt;
  double out;
  if (!absl::SimpleAtod(*v, &out)) return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", *v, "' is not a number"));
  return out;
}

std::vector<std::string> Flags::GetAll(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "rocmforge: %s\n", message.c_str());
  return 1;
}

}  // namespace rocmforge::cli
