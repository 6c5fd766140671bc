// `rocmforge` entry point: dispatches to the registered sub-commands.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.h"

namespace rocmforge::cli {

std::vector<Command>& MutableCommands() {
  static std::vector<Command> commands;
  return commands;
}
bool RegisterCommand(const Command& cmd) {
  MutableCommands().push_back(cmd);
  return true;
}
const std::vector<Command>& Commands() { return MutableCommands(); }

}  // namespace rocmforge::cli

static void PrintUsage() {
  std::fprintf(stderr, "usage: rocmforge <command> [flags]\n\ncommands:\n");
  for (const auto& c : rocmforge::cli::Commands()) std::fprintf(stderr, "  rocmforge %s\n", c.usage);
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : rocmforge::cli::Commands()) {
    if (std::strcmp(c.name, argv[1]) == 0) {
      std::vector<std::string> args(argv + 2, argv + argc);
      return c.run(args);
    }
  }
  std::fprintf(stderr, "rocmforge: unknown command '%s'\n", argv[1]);
  PrintUsage();
  return 2;
}
