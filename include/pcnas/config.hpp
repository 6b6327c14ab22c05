// Configuration macros shared by every header: defined once, here.
#pragma once

#include <pcnas/version.hpp>

// Functions that backends may call from device code (CUDA) as well as the host.
#if defined(__CUDACC__)
#define PCNAS_HOST_DEVICE __host__ __device__
#else
#define PCNAS_HOST_DEVICE
#endif
