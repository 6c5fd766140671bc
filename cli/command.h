// Sub-command registry of the `rocmforge` binary. Each sub-command lives in its
// own cli/cmd_*.cc (server ones in cli/server/) and registers itself with
// RF_REGISTER_COMMAND; main() dispatches on argv[1].
#pragma once

#include <string>
#include <vector>

namespace rocmforge::cli {

// argv excludes the program and sub-command names. Returns the exit code.
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* usage;  // one line: "generate --model M.gguf --prompt TEXT [...]"
  CommandFn run;
};

bool RegisterCommand(const Command& cmd);
const std::vector<Command>& Commands();

}  // namespace rocmforge::cli

#define RF_REGISTER_COMMAND(ident, name, usage, fn) \
  static const bool rf_registered_##ident = ::rocmforge::cli::RegisterCommand({name, usage, fn})
