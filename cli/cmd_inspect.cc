// `rocmforge inspect M.gguf`: prints what a GGUF file holds (version, metadata,
// tensor table, totals) without loading the model. Any problem with the file is
// one line on stderr and exit code 1.
#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/gguf/gguf_file.h"

namespace rocmforge::cli {
namespace {

using gguf::ValueType;

constexpr size_t kMaxStringChars = 72;   // long strings (chat templates) are cut
constexpr size_t kMaxArrayItems = 6;     // long arrays show their first items + count

// Quotes and escapes a string so that control characters and newlines do not
// break the one-line-per-key layout.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : s) {
    if (shown++ >= kMaxStringChars) {
      absl::StrAppend(&out, "...");
      break;
    }
    if (c == '"' || c == '\\') absl::StrAppend(&out, "\\", std::string(1, static_cast<char>(c)));
    else if (c == '\n') absl::StrAppend(&out, "\\n");
    else if (c == '\t') absl::StrAppend(&out, "\\t");
    else if (c < 0x20 || c == 0x7f) absl::StrAppend(&out, absl::StrFormat("\\x%02x", c));
    else out.push_back(static_cast<char>(c));
  }
  out.push_back('"');
  if (s.size() > kMaxStringChars) absl::StrAppend(&out, " (", s.size(), " bytes)");
  return out;
}

std::string Format(const gguf::Value& v) {
  switch (v.type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
      return absl::StrCat(v.u);
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      return absl::StrCat(v.i);
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      return absl::StrFormat("%g", v.f);
    case ValueType::BOOL:
      return v.u ? "true" : "false";
    case ValueType::STRING:
      return Quote(v.str);
    case ValueType::ARRAY: {
      std::string out = "[";
      for (size_t k = 0; k < v.arr.size() && k < kMaxArrayItems; ++k) {
        if (k) out += ", ";
        out += Format(v.arr[k]);
      }
      if (v.arr.size() > kMaxArrayItems) out += ", ...";
      out += "]";
      return out;
    }
  }
  return "?";
}

std::string TypeLabel(const gguf::Value& v) {
  if (v.type != ValueType::ARRAY) return std::string(gguf::ValueTypeName(v.type));
  return absl::StrCat(std::string(gguf::ValueTypeName(v.elem_type)), "[", v.arr.size(), "]");
}

std::string Shape(const std::vector<int64_t>& dims) {
  std::string out = "{";
  for (size_t k = 0; k < dims.size(); ++k) absl::StrAppend(&out, k ? ", " : "", dims[k]);
  return out + "}";
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) { b /= 1024; ++u; }
  return u == 0 ? absl::StrFormat("%.0f %s", b, units[u]) : absl::StrFormat("%.2f %s", b, units[u]);
}

int RunInspect(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {}, {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (flags->positional().size() != 1) return Fail("usage: rocmforge inspect M.gguf");
  auto file_or = gguf::GgufFile::Open(flags->positional()[0]);
  if (!file_or.ok()) return Fail(std::string(file_or.status().message()));
  const gguf::GgufFile& f = **file_or;

  std::printf("%s: GGUF version %u, %zu bytes (%s), alignment %" PRIu64 "\n", f.path().c_str(), f.version(),
              f.file_size(), HumanBytes(static_cast<double>(f.file_size())).c_str(), f.alignment());

  std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
  for (const gguf::KeyValue& kv : f.metadata()) {
    std::printf("  %-44s %-14s %s\n", kv.key.c_str(), TypeLabel(kv.value).c_str(), Format(kv.value).c_str());
  }

  std::printf("\ntensors (%zu):\n", f.tensors().size());
  std::printf("  %-36s %-6s %-22s %14s %14s\n", "name", "type", "shape", "bytes", "offset");
  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, std::pair<int, uint64_t>> by_type;  // type -> (count, bytes)
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::string type(TypeName(t.type));
    std::printf("  %-36s %-6s %-22s %14zu %14" PRIu64 "\n", t.name.c_str(), type.c_str(), Shape(t.dims).c_str(),
                t.nbytes, t.offset);
    params += t.n_elements;
    bytes += t.nbytes;
    by_type[type].first += 1;
    by_type[type].second += t.nbytes;
  }

  std::printf("\ntotals: %zu tensors, %" PRId64 " parameters (%.3f B), %" PRIu64 " bytes (%s)", f.tensors().size(),
              params, static_cast<double>(params) / 1e9, bytes, HumanBytes(static_cast<double>(bytes)).c_str());
  if (params > 0) std::printf(", %.2f bits per weight", 8.0 * static_cast<double>(bytes) / static_cast<double>(params));
  std::printf("\n");
  for (const auto& [type, cb] : by_type) {
    std::printf("  %-6s %5d tensors %14" PRIu64 " bytes (%s)\n", type.c_str(), cb.first, cb.second,
                HumanBytes(static_cast<double>(cb.second)).c_str());
  }
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(inspect, "inspect", "inspect M.gguf", RunInspect);

}  // namespace rocmforge::cli
