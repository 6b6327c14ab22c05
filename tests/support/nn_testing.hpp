// Helpers for the backend and module tests: host <-> backend in double, random data, the
// comparison rule, and finite differences.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/rng.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace testing_nn {

using pcnas::backend::act_shape;
using ix = pcnas::backend::index;
using pcnas::backend::tensor_t;
using pcnas::backend::value_type_t;
using host = std::vector<double>;

inline host random_host(pcnas::rng& r, ix n, double lo = -1.0, double hi = 1.0) {
  host v(static_cast<std::size_t>(n));
  for (auto& x : v) x = lo + (hi - lo) * r.uniform01();
  return v;
}

// Rounds to float, so that a float backend and a double oracle see the same numbers.
inline host as_float(host v) {
  for (auto& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}

template <class B>
tensor_t<B> put(B& b, const host& v) {
  tensor_t<B> t = b.allocate(static_cast<ix>(v.size()));
  std::vector<value_type_t<B>> tmp(v.begin(), v.end());
  b.upload(std::span<const value_type_t<B>>(tmp), t);
  return t;
}

template <class B>
void put_into(B& b, const host& v, tensor_t<B>& t) {
  std::vector<value_type_t<B>> tmp(v.begin(), v.end());
  b.upload(std::span<const value_type_t<B>>(tmp), t);
}

template <class B>
host get(B& b, const tensor_t<B>& t, ix n) {
  std::vector<value_type_t<B>> tmp(static_cast<std::size_t>(n));
  b.download(t, std::span<value_type_t<B>>(tmp));
  return host(tmp.begin(), tmp.end());
}

template <class B>
pcnas::nn::activation<B> put_activation(pcnas::nn::context<B>& ctx, const host& v, act_shape s) {
  auto a = ctx.acquire(s);
  put_into(ctx.backend(), v, a.tensor());
  return a;
}

template <class B>
host get_activation(pcnas::nn::context<B>& ctx, const pcnas::nn::activation<B>& a) {
  return get(ctx.backend(), a.tensor(), a.shape().numel());
}

inline double dot(const host& a, const host& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline double rms(const host& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0.0 : std::sqrt(s / static_cast<double>(v.size()));
}

// The comparison rule of the float-vs-double tests: every element within
// rtol·(|reference| + RMS of the reference). The RMS term stands in for the magnitude of the
// terms that were summed, which bounds float rounding where the result itself is near zero.
struct worst_error {
  double error = 0;
  std::size_t at = 0;
};

inline worst_error relative_error(const host& got, const host& want) {
  const double scale = rms(want);
  worst_error w;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double err = std::abs(got[i] - want[i]) / (std::abs(want[i]) + scale + 1e-30);
    if (!(err <= w.error)) {  // also catches NaN
      w.error = err;
      w.at = i;
    }
  }
  return w;
}

inline void expect_close(const host& got, const host& want, double rtol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": sizes differ");
  const double scale = rms(want);
  const auto [worst, at] = relative_error(got, want);
  CHECK_MESSAGE(worst <= rtol, what << ": worst relative error " << worst << " at element " << at << " (got "
                                    << got[at] << ", want " << want[at] << ", rms " << scale << ")");
}

// Central finite differences of `loss` with respect to the entries of `values` (all of them, or
// an evenly spread subset of at most `max_checked`), compared with `analytic`:
// |fd − analytic| ≤ tol·(1 + |analytic|). `values` is restored afterwards.
inline void check_gradient(const std::function<double()>& loss, host& values, const host& analytic,
                           const std::function<void()>& refresh, const std::string& what, double tol = 1e-6,
                           double h = 1e-6, std::size_t max_checked = 96) {
  REQUIRE(values.size() == analytic.size());
  const std::size_t n = values.size();
  const std::size_t step = n <= max_checked ? 1 : (n + max_checked - 1) / max_checked;
  double worst = 0;
  std::size_t worst_at = 0;
  double worst_fd = 0;
  for (std::size_t i = 0; i < n; i += step) {
    const double keep = values[i];
    values[i] = keep + h;
    refresh();
    const double up = loss();
    values[i] = keep - h;
    refresh();
    const double down = loss();
    values[i] = keep;
    const double fd = (up - down) / (2 * h);
    const double err = std::abs(fd - analytic[i]) / (1.0 + std::abs(analytic[i]));
    if (!(err <= worst)) {
      worst = err;
      worst_at = i;
      worst_fd = fd;
    }
  }
  refresh();
  CHECK_MESSAGE(worst <= tol, what << ": finite difference " << worst_fd << " vs analytic " << analytic[worst_at]
                                   << " at element " << worst_at << " (error " << worst << ")");
}

}  // namespace testing_nn
