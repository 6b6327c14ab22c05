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

command add_info(CLI::App& app);
command add_train(CLI::App& app);
command add_bench(CLI::App& app);
command add_latency(CLI::App& app);
command add_search(CLI::App& app);

}  // namespace pcnas_cli
