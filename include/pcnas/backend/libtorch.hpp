// pcnas's LibTorch backend: include this to use pcnas::backend::libtorch::backend (link
// pcnas::torch, which brings LibTorch).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/libtorch/backend.hpp>
