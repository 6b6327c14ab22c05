# Every public header must compile on its own: one generated translation unit
# per header, all in one object library that is part of the default build: a
# header that is not self-contained fails the build.
file(GLOB_RECURSE pcnas_public_headers CONFIGURE_DEPENDS
  RELATIVE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/include/pcnas/*.hpp)
if(NOT TARGET pcnas::thrust)
  # The Thrust backend's headers need Thrust; without it they are not checked (said at configure).
  list(FILTER pcnas_public_headers EXCLUDE REGEX "^pcnas/backend/thrust")
endif()
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
