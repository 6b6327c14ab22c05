// The Thrust backend's tests compiled by nvcc: the CUDA backend, the same test sources as the
// OpenMP build. Without a CUDA device it says so and reports itself skipped (exit code 77).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdio>

#include "thrust/primitives_test.cpp"
#include "thrust/supernet_test.cpp"
#include "thrust/conformance_test.cpp"

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("skipped: no GPU (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
