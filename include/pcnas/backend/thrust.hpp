// pcnas's Thrust backend: include this to use pcnas::backend::thrust::backend. On the CPU,
// compile with -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP and OpenMP (the pcnas::thrust
// target does); in a .cu file compiled by nvcc it is the CUDA backend (pcnas::cuda).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/thrust/backend.hpp>
