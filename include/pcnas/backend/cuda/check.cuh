// Errors of the CUDA runtime and cuBLAS become exceptions that carry the call, the error string
// and where it was made.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace pcnas::backend::cuda {

class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

inline std::string where(const char* call, const char* file, int line) {
  return std::string(call) + " at " + file + ":" + std::to_string(line);
}

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    throw cuda_error(where(call, file, line) + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw cuda_error(where(call, file, line) + " failed: " + cublasGetStatusName(s) + ": " + cublasGetStatusString(s));
}

}  // namespace detail
}  // namespace pcnas::backend::cuda

#define PCNAS_CUDA_CHECK(call) ::pcnas::backend::cuda::detail::check((call), #call, __FILE__, __LINE__)
