// The pcnas command line: inspect spaces, train and benchmark architectures, build latency
// tables and run PC-NAS searches.
#include "commands.hpp"
#include "interrupt.hpp"
#include "output_dir.hpp"
#include "spaces.hpp"

#include <pcnas/space/arch.hpp>
#include <pcnas/version.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace {

// The exit codes, one meaning each; --help lists them.
enum exit_code : int {
  done = 0,
  failed = 1,       // an error during the work: a file, the data, diverged training, a full disk
  usage = 2,        // a bad option or argument, or an input refused at start-up
  out_of_memory = 3,
  busy = 4,         // another run holds the output directory
  stopped = 5,      // SIGINT or SIGTERM: the work stopped cleanly, --resume continues a search
};

// Messages can quote arguments; a 100 kB argument is not printed back whole.
std::string clip(std::string message) {
  constexpr std::size_t limit = 2000;
  if (message.size() > limit)
    message = message.substr(0, limit) + "... (" + std::to_string(message.size() - limit) + " more characters)";
  return message;
}

int report(const char* prefix, const std::string& message, int code) {
  std::fprintf(stderr, "pcnas: %s%s\n", prefix, clip(message).c_str());
  return code;
}

// Output that could not be written (a full device, a closed pipe) is an error, not success.
int finish(int code) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    const int err = errno;
    std::fprintf(stderr, "pcnas: error: cannot write to standard output: %s\n",
                 err != 0 ? std::strerror(err) : "write error");
    return code == done ? failed : code;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pcnas_cli;
  CLI::App app{"pcnas " PCNAS_VERSION_STRING
               " - hardware-aware neural architecture search with PC-NAS (Posterior Convergent NAS).\n"
               "Spaces: " +
               std::string(space_names) +
               ".\nArchitectures are written as one token per layer, e.g. \"k3e6 k5e3 zero k7e6 ...\" "
               "(kKeE = MBConv with kernel K and expansion E; zero = skip the layer).\n"
               "Run `pcnas COMMAND --help` for a command's options."};
  app.footer(exit_codes_help);
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PCNAS_VERSION_STRING));

  std::vector<command> commands;
  for (auto add : {add_info, add_train, add_bench, add_latency, add_search}) commands.push_back(add(app));
  // A subcommand starts with its parent's footer; one that set its own gets the exit codes after it.
  for (const auto& c : commands)
    if (c.app->get_footer().find(exit_codes_help) == std::string::npos)
      c.app->footer(c.app->get_footer().empty() ? std::string(exit_codes_help)
                                                : c.app->get_footer() + "\n" + exit_codes_help);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return finish(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return finish(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return finish(app.exit(e));
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes (105, 106, ...) would mix with ours: every bad command line is 2.
    report("", e.what(), usage);
    std::fprintf(stderr, "Run with --help for more information.\n");
    return usage;
  }
  try {
    for (const auto& c : commands)
      if (*c.app) return finish(c.run());
  } catch (const usage_error& e) {
    return finish(report("", e.what(), usage));
  } catch (const pcnas::space::arch_error& e) {
    return finish(report("", e.what(), usage));
  } catch (const busy_error& e) {
    return finish(report("", e.what(), busy));
  } catch (const interrupted& e) {
    return finish(report("", e.what(), stopped));
  } catch (const std::bad_alloc&) {
    return finish(report("error: ",
                         "out of memory: the batch, the data or the network do not fit in this machine's memory "
                         "(try a smaller --batch or fewer --threads)",
                         out_of_memory));
  } catch (const std::exception& e) {
    return finish(report("error: ", e.what(), failed));
  }
  return finish(done);
}
