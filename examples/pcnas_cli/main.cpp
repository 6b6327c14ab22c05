// The pcnas command line: inspect spaces, train and benchmark architectures,
// build latency tables and run PC-NAS searches.
#include "commands.hpp"
#include "spaces.hpp"

#include <pcnas/space/arch.hpp>
#include <pcnas/version.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  using namespace pcnas_cli;
  CLI::App app{"pcnas " PCNAS_VERSION_STRING
               " - hardware-aware neural architecture search with PC-NAS (Posterior Convergent NAS).\n"
               "Spaces: " +
               std::string(space_names) + ".\nArchitectures are written as one token per layer, e.g. "
               "\"k3e6 k5e3 zero k7e6 ...\" (kKeE = MBConv kernel K, expansion E; zero = skip)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PCNAS_VERSION_STRING));

  info_options info;
  auto* info_cmd = app.add_subcommand("info", "Print a space's layers, shapes, choices and size, or an "
                                              "architecture's MACs, parameters and activation memory");
  info_cmd->add_option("space", info.space, "Search space or fixed network")->required();
  info_cmd->add_option("--arch", info.arch, "An architecture of the space, e.g. \"k3e6 zero ...\"");
  info_cmd->add_flag("--json", info.json,
                     "Print one JSON object (keys include macs, params, activation_bytes, num_architectures; "
                     "without --arch on a searchable space, the cost keys hold {min, max})");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*info_cmd) return run_info(info);
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
