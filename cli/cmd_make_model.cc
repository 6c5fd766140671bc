// `rocmforge make-model --shape NAME --type TYPE OUT.gguf [--seed S] [--threads N]`:
// writes a GGUF with random weights in the shape of a real model (llama3-8b,
// qwen2-7b, ...) for performance work without downloading weights.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/gguf/model_shapes.h"
#include "engine/gguf/quant_mix.h"
#include "engine/gguf/random_model.h"

namespace rocmforge::cli {
namespace {

int RunMakeModel(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"shape", "type", "seed", "threads"}, {"quiet"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (flags->positional().size() != 1 || !flags->Has("shape") || !flags->Has("type")) {
    return Fail(absl::StrCat("usage: rocmforge make-model --shape NAME --type TYPE OUT.gguf [--seed S] [--threads N] "
                             "(shapes: ", gguf::ShapeNames(), ")"));
  }
  auto shape = gguf::FindShape(*flags->Get("shape"));
  if (!shape.ok()) return Fail(std::string(shape.status().message()));
  FileType ftype;
  if (!quant::ParseFileType(*flags->Get("type"), &ftype)) {
    return Fail(absl::StrCat("unknown --type '", *flags->Get("type"), "' (supported: ",
                             quant::SupportedFileTypeNames(), ")"));
  }
  auto seed = flags->GetInt("seed", 1);
  if (!seed.ok()) return Fail(std::string(seed.status().message()));
  auto threads = flags->GetInt("threads", 0);
  if (!threads.ok()) return Fail(std::string(threads.status().message()));
  if (*threads < 0 || *threads > 4096) return Fail("flag --threads: must be between 0 (all cores) and 4096");

  gguf::RandomModelOptions options;
  options.seed = static_cast<uint64_t>(*seed);
  options.threads = static_cast<int>(*threads);
  options.progress = !flags->Has("quiet");
  absl::Status s = gguf::WriteRandomModel(*shape, ftype, flags->positional()[0], options);
  if (!s.ok()) return Fail(std::string(s.message()));
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(make_model, "make-model",
                    "make-model --shape llama3-8b --type Q4_K_M OUT.gguf [--seed S] [--threads N] [--quiet]",
                    RunMakeModel);

}  // namespace rocmforge::cli
