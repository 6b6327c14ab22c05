// bench_train_step on the CUDA device system: the same source, compiled by nvcc.
#include "bench_train_step.cpp"
