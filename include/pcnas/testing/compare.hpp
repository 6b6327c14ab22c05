// What the conformance checks are made of: tensors between host (in double) and a backend, random
// data, the comparison rule against the reference, and finite-difference gradient checks. Needs
// doctest (the checks report through CHECK/REQUIRE).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/rng.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace pcnas::testing {

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


// ---------------------------------------------------------------------------------------------
// The tolerances of the conformance checks, by the backend's value type.
//
//   reference    every element of a result within reference·(|want| + RMS(want)) of the
//                reference backend in double (see relative_error). The inputs are rounded to
//                float first, so a float backend and the reference see the same numbers.
//                float: 1e-4; double: 1e-9.
//   fd, fd_step  finite differences on the backend itself, entry by entry (every entry, or 96
//                spread evenly over a large tensor): the central difference with step h must
//                be within fd·(1 + |analytic|) of the analytic gradient. double: h = 1e-6,
//                fd = 1e-6 (truncation ~h², rounding ~1e-16·|L|/h, both far below).
//                float: h = 1e-2, fd = 1e-2 (rounding ~1e-7·|L|/h stays below 1e-3 for the
//                losses here). A float step that large can straddle a ReLU6 kink, where no
//                difference quotient means anything: an entry whose one-sided differences
//                disagree by more than fd·(1 + |analytic|) is set aside, and at least three
//                quarters of the entries must be smooth and all of those must pass.
// ---------------------------------------------------------------------------------------------
struct tolerance {
  double reference = 1e-4;
  double fd = 1e-2;
  double fd_step = 1e-2;
  bool skip_kinks = true;
};

template <class T>
constexpr tolerance tolerance_for() {
  if constexpr (sizeof(T) >= sizeof(double))
    return {.reference = 1e-9, .fd = 1e-6, .fd_step = 1e-6, .skip_kinks = false};
  else
    return {.reference = 1e-4, .fd = 1e-2, .fd_step = 1e-2, .skip_kinks = true};
}

// Checks `analytic`, the gradient of `loss` at `values`, by finite differences under `tol`.
// `loss(v)` evaluates the loss with the entries of the tensor under test set to v; the steps are
// taken on values rounded to T, so the quotient uses the step the backend actually saw.
template <class T>
void check_gradient_fd(const std::function<double(const host&)>& loss, const host& values, const host& analytic,
                       const tolerance& tol, const std::string& what) {
  REQUIRE_MESSAGE(values.size() == analytic.size(), what << ": the gradient has " << analytic.size()
                                                          << " entries for " << values.size() << " values");
  const std::size_t n = values.size();
  const double h = tol.fd_step;
  const std::size_t max_checked = 96;
  const std::size_t stride = n <= max_checked ? 1 : (n + max_checked - 1) / max_checked;
  host v = values;
  const double base = tol.skip_kinks ? loss(v) : 0.0;
  double worst = 0, worst_fd = 0;
  std::size_t worst_at = 0, checked = 0, kinks = 0;
  for (std::size_t i = 0; i < n; i += stride) {
    const double keep = values[i];
    const double up_value = static_cast<double>(static_cast<T>(keep + h));
    const double down_value = static_cast<double>(static_cast<T>(keep - h));
    v[i] = up_value;
    const double up = loss(v);
    v[i] = down_value;
    const double down = loss(v);
    v[i] = keep;
    ++checked;
    const double scale = 1.0 + std::abs(analytic[i]);
    if (tol.skip_kinks) {
      const double right = (up - base) / (up_value - keep), left = (base - down) / (keep - down_value);
      if (std::abs(right - left) > tol.fd * scale) {
        ++kinks;
        continue;
      }
    }
    const double fd = (up - down) / (up_value - down_value);
    const double err = std::abs(fd - analytic[i]) / scale;
    if (!(err <= worst)) {
      worst = err;
      worst_at = i;
      worst_fd = fd;
    }
  }
  CHECK_MESSAGE(4 * kinks <= checked, what << ": " << kinks << " of " << checked
                                           << " entries are not smooth at the finite-difference step " << h);
  CHECK_MESSAGE(worst <= tol.fd, what << ": finite difference " << worst_fd << " vs analytic " << analytic[worst_at]
                                      << " at element " << worst_at << " (error " << worst << ", tolerance "
                                      << tol.fd << ")");
}

}  // namespace pcnas::testing
