// Every subcommand lives in its own translation unit and registers itself on the app: it adds
// its options and returns the action to run when it was chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace pcnas_cli {

struct command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

/// What each exit code means; every command's --help ends with it.
inline constexpr const char* exit_codes_help =
    "Exit codes: 0 done; 1 failed during the work (a file, the data, diverged training, a full disk); "
    "2 bad option or input, refused before any work; 3 out of memory; 4 the output directory is in use by "
    "another run; 5 stopped by SIGINT or SIGTERM (a search continues with --resume).";

command add_info(CLI::App& app);
command add_train(CLI::App& app);
command add_bench(CLI::App& app);
command add_latency(CLI::App& app);
command add_search(CLI::App& app);

}  // namespace pcnas_cli
