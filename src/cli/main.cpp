// tpro entry point: builds the CLI11 app from the registered subcommands, runs the chosen
// one, and turns a tpro::Error into one message on stderr and exit code 1.
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"

namespace tpro::cli {

std::vector<Command>& commands() {
  static std::vector<Command> c;
  return c;
}

bool add_command(std::string name, std::string help, Setup setup) {
  commands().push_back({std::move(name), std::move(help), std::move(setup)});
  return true;
}

}  // namespace tpro::cli

int main(int argc, char** argv) {
  using namespace tpro;
  CLI::App app{"tpro: LoRA and QLoRA fine-tuning of Llama-family models, natively on CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tpro 0.1.0");
  bool quiet = false, verbose = false;
  app.add_flag("-q,--quiet", quiet, "Only print warnings and errors");
  app.add_flag("-v,--verbose", verbose, "Print debug messages");

  auto& cmds = cli::commands();
  std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, cli::Runner>> runners;
  for (auto& c : cmds) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runners.emplace_back(sub, c.setup(sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::fprintf(stderr, "tpro: error: %s\n", e.what());
    return 2;
  }
  if (quiet) set_log_level(LogLevel::Warn);
  if (verbose) set_log_level(LogLevel::Debug);
  for (auto& [sub, run] : runners) {
    if (!sub->parsed()) continue;
    try {
      return run();
    } catch (const Error& e) {
      std::fprintf(stderr, "tpro: error: %s\n", e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tpro: error: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
