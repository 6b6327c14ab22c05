// pcnas's Eigen (CPU) backend: include this to use pcnas::backend::eigen::backend.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/backend.hpp>
