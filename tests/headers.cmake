# Every public header must compile on its own: one generated translation unit
# per header, all in one object library that is part of the default build: a
# header that is not self-contained fails the build.
file(GLOB_RECURSE pcnas_public_headers CONFIGURE_DEPENDS
  RELATIVE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/include/pcnas/*.hpp)
if(NOT TARGET pcnas::thrust)
  # The Thrust backend's headers need Thrust; without it they are not checked (said at configure).
  list(FILTER pcnas_public_headers EXCLUDE REGEX "^pcnas/backend/thrust")
endif()
# The LibTorch backend's headers are compiled alone by tests/libtorch, whose source includes
# <pcnas/backend/libtorch.hpp> first; three more LibTorch translation units here would cost a
# quarter of a minute of every build.
list(FILTER pcnas_public_headers EXCLUDE REGEX "^pcnas/backend/libtorch")
set(pcnas_header_sources)
foreach(header IN LISTS pcnas_public_headers)
  string(MAKE_C_IDENTIFIER ${header} name)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/headers/${name}.cpp)
  file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n#include <${header}>\n")
  list(APPEND pcnas_header_sources ${source})
endforeach()
add_library(pcnas_header_check OBJECT ${pcnas_header_sources})
target_link_libraries(pcnas_header_check PRIVATE pcnas::pcnas)
foreach(dep pcnas::eigen pcnas::io doctest::doctest pcnas::thrust)
  if(TARGET ${dep})
    target_link_libraries(pcnas_header_check PRIVATE ${dep})
  endif()
endforeach()

# Headers that read no files must not need zlib: a program that brings its own data builds and
# trains without it. Each is compiled alone and the list of headers it opened must not name zlib.h;
# the data readers (data/dataset.hpp, data/idx.hpp) are the ones that may.
foreach(header pcnas/data/images.hpp pcnas/data/batcher.hpp pcnas/data/split.hpp pcnas/nn/supernet_trainer.hpp
               pcnas/search/pc_nas.hpp pcnas/testing/supernet_checks.hpp)
  string(MAKE_C_IDENTIFIER ${header} name)
  add_test(NAME no_zlib.${name}
    COMMAND ${CMAKE_CXX_COMPILER} -std=c++20 -fsyntax-only -H -I${PROJECT_SOURCE_DIR}/include
            ${CMAKE_CURRENT_BINARY_DIR}/headers/${name}.cpp)
  set_tests_properties(no_zlib.${name} PROPERTIES FAIL_REGULAR_EXPRESSION "zlib\\.h")
endforeach()

# The folders include each other without a cycle (io/ is dependency-free, json/ sits above
# search/, ...); and the check itself fails on a loop.
add_test(NAME structure.folder_graph COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/structure/folder_graph.sh ${PROJECT_SOURCE_DIR}/include)
set(loop_tree ${CMAKE_CURRENT_BINARY_DIR}/folder_loop/pcnas)
file(WRITE ${loop_tree}/io/a.hpp "#include <pcnas/search/b.hpp>\n")
file(WRITE ${loop_tree}/search/b.hpp "#include <pcnas/io/a.hpp>\n")
add_test(NAME structure.folder_graph_finds_a_loop
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/structure/folder_graph.sh ${CMAKE_CURRENT_BINARY_DIR}/folder_loop)
set_tests_properties(structure.folder_graph_finds_a_loop PROPERTIES PASS_REGULAR_EXPRESSION "include each other in a loop")
