// The backend conformance kit: every check that the library runs on its own backends, for any
// backend B, as doctest test cases. In one test source of a downstream project:
//
//   #include <my_backend.hpp>
//   #include <pcnas/testing/conformance.hpp>
//   PCNAS_BACKEND_CONFORMANCE(my::backend)
//
// linked with doctest (and a doctest main), or, from CMake after find_package(pcnas),
// pcnas_add_conformance_test(NAME my_backend_conformance HEADER my_backend.hpp TYPE my::backend).
// The kit builds B with `B{}`; a backend that needs arguments specialises
// pcnas::testing::conformance_traits (below). Tolerances: compare.hpp.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/fused_paths.hpp>
#include <pcnas/testing/compare.hpp>
#include <pcnas/testing/module_checks.hpp>
#include <pcnas/testing/primitive_checks.hpp>
#include <pcnas/testing/supernet_checks.hpp>

#include <doctest/doctest.h>

namespace pcnas::testing {

template <class B>
struct default_conformance_traits {
  // How the kit makes a backend; returned by value, so B need not be movable.
  static B make() { return B{}; }
  static constexpr tolerance tolerances = tolerance_for<backend::value_type_t<B>>();
};

/// Specialise to build B with arguments or to state other tolerances; derive from
/// default_conformance_traits<B> to keep the rest.
template <class B>
struct conformance_traits : default_conformance_traits<B> {};

}  // namespace pcnas::testing

// One test case per part of the contract, each named after the backend, so that a failure says
// which backend and which part.
#define PCNAS_BACKEND_CONFORMANCE(...)                                                                         \
  static_assert(::pcnas::backend::check_backend<__VA_ARGS__>());                                               \
  static_assert(::pcnas::backend::check_fused_paths<__VA_ARGS__>());                                           \
  TEST_CASE(#__VA_ARGS__ " conformance: the types, memory and the fused paths it provides") {                  \
    using pcnas_b = __VA_ARGS__;                                                                               \
    pcnas_b b = ::pcnas::testing::conformance_traits<pcnas_b>::make();                                         \
    MESSAGE(#__VA_ARGS__ " (" << b.name() << ") " << ::pcnas::backend::fused_path_report<pcnas_b>());          \
    ::pcnas::testing::check_memory(b);                                                                         \
  }                                                                                                            \
  TEST_CASE(#__VA_ARGS__ " conformance: primitives against the reference and finite differences") {           \
    using pcnas_b = __VA_ARGS__;                                                                               \
    using pcnas_t = ::pcnas::testing::conformance_traits<pcnas_b>;                                             \
    pcnas_b b = pcnas_t::make();                                                                               \
    SUBCASE("conv2d") { ::pcnas::testing::check_conv2d(b, pcnas_t::tolerances); }                              \
    SUBCASE("pointwise") { ::pcnas::testing::check_pointwise(b, pcnas_t::tolerances); }                        \
    SUBCASE("depthwise") { ::pcnas::testing::check_depthwise(b, pcnas_t::tolerances); }                        \
    SUBCASE("batch norm") { ::pcnas::testing::check_batch_norm(b, pcnas_t::tolerances); }                      \
    SUBCASE("relu6 and add") { ::pcnas::testing::check_elementwise(b, pcnas_t::tolerances); }                  \
    SUBCASE("global average pooling") { ::pcnas::testing::check_pooling(b, pcnas_t::tolerances); }             \
    SUBCASE("linear") { ::pcnas::testing::check_linear(b, pcnas_t::tolerances); }                              \
    SUBCASE("softmax cross-entropy") { ::pcnas::testing::check_cross_entropy(b, pcnas_t::tolerances); }        \
    SUBCASE("sgd") { ::pcnas::testing::check_sgd(b, pcnas_t::tolerances); }                                   \
    SUBCASE("device-loop members") { ::pcnas::testing::check_device_loop(b, pcnas_t::tolerances); }             \
  }                                                                                                            \
  TEST_CASE(#__VA_ARGS__ " conformance: op modules, fused paths included") {                                   \
    using pcnas_b = __VA_ARGS__;                                                                               \
    using pcnas_t = ::pcnas::testing::conformance_traits<pcnas_b>;                                             \
    pcnas_b b = pcnas_t::make();                                                                               \
    ::pcnas::testing::check_library_modules(b, pcnas_t::tolerances);                                           \
  }                                                                                                            \
  TEST_CASE(#__VA_ARGS__ " conformance: supernet paths and training steps") {                                  \
    using pcnas_b = __VA_ARGS__;                                                                               \
    using pcnas_t = ::pcnas::testing::conformance_traits<pcnas_b>;                                             \
    ::pcnas::testing::check_supernet<pcnas_b>([] { return pcnas_t::make(); }, pcnas_t::tolerances);            \
  }                                                                                                            \
  TEST_CASE(#__VA_ARGS__ " conformance: a short PC-NAS search") {                                              \
    using pcnas_b = __VA_ARGS__;                                                                               \
    ::pcnas::testing::check_search<pcnas_b>([] { return ::pcnas::testing::conformance_traits<pcnas_b>::make(); }); \
  }
