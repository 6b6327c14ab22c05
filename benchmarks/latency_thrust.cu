// latency_thrust on the CUDA device system: the same source, compiled by nvcc.
#include "latency_thrust.cpp"
