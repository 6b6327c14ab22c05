// The reference backend now ships with the library (pcnas/testing); the tests keep their old name
// for it.
#pragma once

#include <pcnas/testing/naive_backend.hpp>

namespace user_naive {
template <class T>
using backend = pcnas::testing::naive_backend<T>;
}  // namespace user_naive
