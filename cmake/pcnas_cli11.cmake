# CLI11 for the programs built here (the pcnas CLI, the experiment programs): its CMake package
# where installed, else its header. Defines CLI11::CLI11 in the including directory when found.
find_package(CLI11 QUIET CONFIG)
if(NOT TARGET CLI11::CLI11)
  find_path(PCNAS_CLI11_INCLUDE CLI/CLI.hpp)
  if(PCNAS_CLI11_INCLUDE)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE ${PCNAS_CLI11_INCLUDE})
  endif()
endif()
