# The Thrust backend's tests: on the OpenMP device system with the host compiler (test_thrust,
# always run), and the same sources compiled by nvcc for CUDA (test_thrust_cuda, label `gpu`:
# built whenever nvcc is found so that it never rots, run only where a GPU is present).
if(TARGET pcnas::thrust AND TARGET pcnas::io)
  pcnas_area_test(thrust pcnas::thrust pcnas::io)
  if(TARGET pcnas::eigen)
    # The search is compared with the Eigen backend's; without Eigen, with the naive one.
    target_link_libraries(test_thrust PRIVATE pcnas::eigen)
    target_compile_definitions(test_thrust PRIVATE PCNAS_TEST_WITH_EIGEN)
  endif()
else()
  message(WARNING "pcnas: Thrust (CCCL or libthrust-dev), OpenMP or the io dependencies missing: "
                  "the Thrust backend's tests (test_thrust) are skipped")
endif()

if(PCNAS_CUDA_ENABLED AND TARGET pcnas::cuda AND TARGET pcnas::io)
  add_executable(test_thrust_cuda ${CMAKE_CURRENT_LIST_DIR}/cuda_test.cu)
  target_link_libraries(test_thrust_cuda PRIVATE doctest::doctest pcnas::cuda pcnas::io)
  target_include_directories(test_thrust_cuda PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  # CUDA_STANDARD 20 is unknown to CMake < 3.27 for nvcc, so the flag is given directly.
  target_compile_options(test_thrust_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 -Xcompiler=-Wall,-Wextra>)
  add_test(NAME thrust_cuda COMMAND test_thrust_cuda)
  # The binary exits with 77 after printing "skipped: no GPU" when it finds no CUDA device.
  set_tests_properties(thrust_cuda PROPERTIES LABELS gpu SKIP_RETURN_CODE 77)
endif()
