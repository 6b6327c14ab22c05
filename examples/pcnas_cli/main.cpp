// The pcnas command line: inspect spaces, train and benchmark architectures, build latency
// tables and run PC-NAS searches.
#include "commands.hpp"
#include "spaces.hpp"

#include <pcnas/space/arch.hpp>
#include <pcnas/version.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <vector>

int main(int argc, char** argv) {
  using namespace pcnas_cli;
  CLI::App app{"pcnas " PCNAS_VERSION_STRING
               " - hardware-aware neural architecture search with PC-NAS (Posterior Convergent NAS).\n"
               "Spaces: " +
               std::string(space_names) +
               ".\nArchitectures are written as one token per layer, e.g. \"k3e6 k5e3 zero k7e6 ...\" "
               "(kKeE = MBConv with kernel K and expansion E; zero = skip the layer).\n"
               "Run `pcnas COMMAND --help` for a command's options."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PCNAS_VERSION_STRING));

  std::vector<command> commands;
  for (auto add : {add_info, add_train, add_bench, add_latency, add_search}) commands.push_back(add(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& c : commands)
      if (*c.app) return c.run();
  } catch (const usage_error& e) {
    std::fprintf(stderr, "pcnas: %s\n", e.what());
    return 2;
  } catch (const pcnas::space::arch_error& e) {
    std::fprintf(stderr, "pcnas: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pcnas: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
