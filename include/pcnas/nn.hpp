// Module header: the supernet on any backend, its modules, training (a supernet bound to data,
// or one architecture from scratch) and latency profiling. Bring a backend
// (pcnas/backend/eigen.hpp, pcnas/backend/thrust.hpp or your own).
#pragma once

#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/nn/module_concept.hpp>
#include <pcnas/nn/op_module.hpp>
#include <pcnas/nn/supernet.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/nn/train_architecture.hpp>
