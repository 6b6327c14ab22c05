// Options of each subcommand and their entry points (one translation unit each).
#pragma once

#include <string>

namespace pcnas_cli {

struct info_options {
  std::string space;
  std::string arch;
  bool json = false;
};
int run_info(const info_options&);

}  // namespace pcnas_cli
