// Subcommand registry: each cli/<name>.cpp registers itself with TPRO_COMMAND, so adding a
// subcommand touches one file. setup() declares the CLI11 options on the subcommand and
// returns the function to run once parsing succeeded (it returns the process exit code).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace tpro::cli {

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App* sub)>;

struct Command {
  std::string name, help;
  Setup setup;
};

std::vector<Command>& commands();
bool add_command(std::string name, std::string help, Setup setup);

}  // namespace tpro::cli

#define TPRO_CONCAT2(a, b) a##b
#define TPRO_CONCAT(a, b) TPRO_CONCAT2(a, b)
#define TPRO_COMMAND(name, help, setup) \
  static const bool TPRO_CONCAT(kRegistered_, __LINE__) = ::tpro::cli::add_command(name, help, setup)
