# The package is consumed the two ways users do: find_package on an installed
# copy, and add_subdirectory on the source tree. Each is a separate CMake project
# built and run by ctest; the installed package is asked for each of its components.
set(consumer_prefix ${CMAKE_BINARY_DIR}/consumer_install)
add_test(NAME consumer_install
  COMMAND ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${consumer_prefix})
set_tests_properties(consumer_install PROPERTIES FIXTURES_SETUP pcnas_installed)

function(pcnas_installed_consumer name)
  add_test(NAME ${name}
    COMMAND ${CMAKE_CTEST_COMMAND}
      --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/${name} ${CMAKE_BINARY_DIR}/${name}
      --build-generator ${CMAKE_GENERATOR}
      --build-options -DCMAKE_PREFIX_PATH=${consumer_prefix} -DCMAKE_BUILD_TYPE=Release ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED pcnas_installed)
endfunction()

pcnas_installed_consumer(consumer_installed --test-command consumer)
if(TARGET pcnas::io)
  pcnas_installed_consumer(consumer_io --test-command consumer)
endif()
if(TARGET pcnas::eigen)
  # The conformance kit, from the installed package, against a downstream backend.
  pcnas_installed_consumer(consumer_conformance --test-command my_backend_conformance)
endif()
if(TARGET pcnas::torch)
  # The LibTorch backend from the installed package (component torch), through the kit. LibTorch
  # is found where this build found it.
  pcnas_installed_consumer(consumer_torch -DTorch_DIR=${Torch_DIR} --test-command libtorch_conformance)
endif()
pcnas_installed_consumer(consumer_bad_component)
set_tests_properties(consumer_bad_component PROPERTIES
  PASS_REGULAR_EXPRESSION "pcnas has no component 'no_such_component'")
# The installed program is tested from the top-level CMakeLists, where its target exists.

add_test(NAME consumer_subdir
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/consumer_subdir ${CMAKE_BINARY_DIR}/consumer_subdir
    --build-generator ${CMAKE_GENERATOR}
    --build-options -DPCNAS_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release
    --test-command consumer)
