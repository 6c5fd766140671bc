// `rocmforge quantize IN.gguf OUT.gguf TYPE [--threads N]`: writes a copy of a
// model in another quant mix (Q8_0, Q4_K_M, ...) and prints what it did.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/quant_mix.h"
#include "engine/gguf/quantizer.h"

namespace rocmforge::cli {
namespace {

constexpr char kUsage[] = "quantize IN.gguf OUT.gguf TYPE [--threads N]";

double MiB(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

int RunQuantize(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"threads"}, {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (flags->positional().size() != 3) {
    return Fail(absl::StrCat("usage: rocmforge ", kUsage, " (TYPE one of ",
                             quant::SupportedFileTypeNames(), ")"));
  }
  const std::string& in = flags->positional()[0];
  const std::string& out = flags->positional()[1];
  FileType ftype;
  if (!quant::ParseFileType(flags->positional()[2], &ftype)) {
    return Fail(absl::StrCat("unknown quant type '", flags->positional()[2], "'; expected one of ",
                             quant::SupportedFileTypeNames()));
  }
  auto threads = flags->GetInt("threads", 0);
  if (!threads.ok()) return Fail(std::string(threads.status().message()));
  if (*threads < 0 || *threads > 1024) return Fail("--threads must be between 0 (all cores) and 1024");

  const auto start = std::chrono::steady_clock::now();
  if (auto st = quant::QuantizeModel(in, out, ftype, static_cast<int>(*threads)); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto src = gguf::GgufFile::Open(in);
  auto dst = gguf::GgufFile::Open(out);
  if (!src.ok()) return Fail(std::string(src.status().message()));
  if (!dst.ok()) return Fail(absl::StrCat("wrote ", out, " but cannot read it back: ", dst.status().message()));
  std::map<std::string, int> counts;
  for (const auto& t : (*dst)->tensors()) ++counts[std::string(TypeName(t.type))];
  std::printf("quantized %s (%.2f MiB) -> %s (%.2f MiB) as %s in %.2f s\n", in.c_str(),
              MiB((*src)->file_size()), out.c_str(), MiB((*dst)->file_size()),
              std::string(quant::FileTypeName(ftype)).c_str(), secs);
  for (const auto& [type, n] : counts) std::printf("  %-6s %d tensors\n", type.c_str(), n);
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(quantize, "quantize", kUsage, RunQuantize);

}  // namespace rocmforge::cli
