# Opt-in layers on top of pcnas::pcnas. Each one exists only when what it needs
# was found; a consumer asks for the one it wants and gets a clear message if it
# is missing. Used both from the source tree and from the installed package.
find_package(Eigen3 3.3 QUIET NO_MODULE)
find_package(OpenMP QUIET COMPONENTS CXX)
find_package(ZLIB QUIET)
find_package(nlohmann_json 3 QUIET)

if(TARGET Eigen3::Eigen AND NOT TARGET pcnas::eigen)
  add_library(pcnas_eigen INTERFACE IMPORTED GLOBAL)
  target_link_libraries(pcnas_eigen INTERFACE pcnas::pcnas Eigen3::Eigen)
  if(TARGET OpenMP::OpenMP_CXX)
    target_link_libraries(pcnas_eigen INTERFACE OpenMP::OpenMP_CXX)
  endif()
  add_library(pcnas::eigen ALIAS pcnas_eigen)
endif()

# Readers for IDX (.gz) data sets and JSON input/output.
if(TARGET ZLIB::ZLIB AND TARGET nlohmann_json::nlohmann_json AND NOT TARGET pcnas::io)
  add_library(pcnas_io INTERFACE IMPORTED GLOBAL)
  target_link_libraries(pcnas_io INTERFACE pcnas::pcnas ZLIB::ZLIB nlohmann_json::nlohmann_json)
  add_library(pcnas::io ALIAS pcnas_io)
endif()
