# The package is consumed the two ways users do: find_package on an installed
# copy, and add_subdirectory on the source tree. Each is a separate CMake project
# built and run by ctest.
set(consumer_prefix ${CMAKE_BINARY_DIR}/consumer_install)
add_test(NAME consumer_install
  COMMAND ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${consumer_prefix})
add_test(NAME consumer_installed
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/consumer_installed ${CMAKE_BINARY_DIR}/consumer_installed
    --build-generator ${CMAKE_GENERATOR}
    --build-options -DCMAKE_PREFIX_PATH=${consumer_prefix} -DCMAKE_BUILD_TYPE=Release
    --test-command consumer)
set_tests_properties(consumer_installed PROPERTIES DEPENDS consumer_install)
add_test(NAME consumer_subdir
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/consumer_subdir ${CMAKE_BINARY_DIR}/consumer_subdir
    --build-generator ${CMAKE_GENERATOR}
    --build-options -DPCNAS_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release
    --test-command consumer)
