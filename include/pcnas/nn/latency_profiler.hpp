// Latency tables measured on any backend: each (layer, choice) of a space timed alone through
// the supernet's pieces, with the stem and the head as the fixed part; end-to-end timing of
// whole architectures to check a table against; and the linear calibration of the per-op sum.
#pragma once

#include <pcnas/cost/constraint.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/nn/supernet.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/version.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <functional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#endif

namespace pcnas::nn {

// Where a long measurement stands, for a progress line, and how often the machine got in the way.
struct latency_progress {
  std::size_t round = 0;         // rounds done
  std::size_t rounds = 0;        // rounds in all (warm-up included)
  std::size_t retried = 0;        // timed measurements taken again because a thread was switched out
  std::size_t disturbed = 0;     // timed measurements kept although disturbed (no retry was clean)
  std::size_t measurements = 0;  // timed measurements kept so far
};

// How a time is taken. Each measurement is one call bracketed by b.synchronize() on both sides
// (so that an asynchronous backend is timed to completion and nothing earlier leaks in), read
// from std::chrono::steady_clock; an entry's time is the median of its `repeats` measurements.
//
// The measurements run in rounds: a round calls every entry once, in a fixed order, and the
// rounds repeat. On a machine shared with other work a burst of load then lands on one sample
// of many entries, which the median drops, instead of on all samples of one entry, which would
// shift that entry's median. The first `warmup` rounds are not timed (first-touch page faults,
// the activation pool growing to its working set, caches and branch predictors settling).
//
// A measurement during which one of this process's threads was switched out (a context
// switch, voluntary or not, as getrusage counts them) shared the CPUs with another process:
// with several threads every barrier then waits for the one that is not running, and the call
// takes up to tens of times longer (on a two-core machine with one busy neighbour, 1 ms became
// 32 ms: one scheduler tick per kernel). Undisturbed calls of a CPU backend switch out neither
// way. Such a measurement is taken again, up to `retries` times; if none is clean the last one
// is kept and counted in latency_progress::disturbed, so that a caller can tell a table
// measured on a busy machine. Where getrusage is missing nothing is retried; a backend whose
// synchronize() sleeps (a GPU waiting on an event) switches out by design and wants
// `retries = 0`.
//
// The default batch is 32, a serving batch at which one op of the Fashion-MNIST spaces runs for
// a millisecond or more on two cores: far above the clock's resolution and the cost of waking
// the threads, so that the per-op times are dominated by the work itself. Batch 1 (tens to
// hundreds of microseconds per op) works too. A table predicts latency at the batch it was
// measured at: measure one table per deployment batch.
struct latency_profile_options {
  int batch = 32;
  int warmup = 3;    // untimed rounds first
  int repeats = 21;  // timed rounds (odd, so that the median is one measurement)
  int retries = 3;   // new tries of a disturbed measurement
  // Recorded in the provenance; empty: the host CPU's model name, from /proc/cpuinfo. A GPU
  // backend should name its device here.
  std::string device;
  std::uint64_t seed = 0;  // of the synthetic input values
  // Called after each round; the last call has the totals of the measurement.
  std::function<void(const latency_progress&)> progress;
};

// The host CPU's "model name" from /proc/cpuinfo, or "unknown" where there is none.
inline std::string host_cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto first = line.find_first_not_of(" \t", colon + 1);
    if (first == std::string::npos) continue;
    return line.substr(first, line.find_last_not_of(" \t\r") + 1 - first);
  }
  return "unknown";
}

// Now, in UTC, as ISO 8601 ("2025-01-31T12:00:00Z").
inline std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
#if defined(_WIN32)
  gmtime_s(&utc, &now);
#else
  gmtime_r(&now, &utc);
#endif
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// The number of threads the backend computes with: its threads() when it has one, else 1.
template <class B>
int backend_threads(const B& b) {
  if constexpr (requires { { b.threads() } -> std::convertible_to<int>; })
    return static_cast<int>(b.threads());
  else
    return 1;
}

// The space's choice names as runtime strings: the `choices` of its latency table.
template <class Space>
std::vector<std::vector<std::string>> choice_name_table() {
  std::vector<std::vector<std::string>> names(Space::num_layers);
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c) names[l].emplace_back(Space::choice_names[l][c]);
  return names;
}

namespace detail {

inline void check_timing_options(const latency_profile_options& o, const char* who) {
  if (o.batch < 1)
    throw std::invalid_argument(std::string(who) + ": the batch must be at least 1, got " + std::to_string(o.batch));
  if (o.repeats < 1)
    throw std::invalid_argument(std::string(who) + ": repeats must be at least 1, got " +
                                std::to_string(o.repeats));
  if (o.warmup < 0)
    throw std::invalid_argument(std::string(who) + ": warmup must be non-negative, got " +
                                std::to_string(o.warmup));
  if (o.retries < 0)
    throw std::invalid_argument(std::string(who) + ": retries must be non-negative, got " +
                                std::to_string(o.retries));
}

inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Small random values, so that no input is all zeros or denormal; the kernels' running time does
// not depend on them.
template <class B>
activation<B> synthetic_activation(context<B>& ctx, act_shape s, pcnas::rng& r) {
  using value = backend::value_type_t<B>;
  std::vector<value> host(static_cast<std::size_t>(s.numel()));
  for (auto& v : host) v = static_cast<value>(2.0 * r.uniform01() - 1.0);
  activation<B> a = ctx.acquire(s);
  ctx.backend().upload(std::span<const value>(host), a.tensor());
  return a;
}

template <class Space>
act_shape image_shape(index batch) {
  return {batch, Space::input_shape.height, Space::input_shape.width, Space::input_shape.channels};
}
inline act_shape nhwc(index batch, const space::tensor_shape& s) { return {batch, s.height, s.width, s.channels}; }

// Context switches of this process's threads so far, voluntary and involuntary, or 0 where
// unknown.
inline long context_switches() {
#if defined(__unix__) || defined(__APPLE__)
  rusage r{};
  if (getrusage(RUSAGE_SELF, &r) == 0) return static_cast<long>(r.ru_nvcsw + r.ru_nivcsw);
#endif
  return 0;
}

// Rounds of run(i) over i in [0, count): `warmup` untimed rounds, then `repeats` timed ones, a
// disturbed measurement retried as latency_profile_options describes. Returns the median
// milliseconds of each i and the final progress.
template <class B, class F>
std::pair<std::vector<double>, latency_progress> timed_rounds(B& b, std::size_t count,
                                                              const latency_profile_options& o, F&& run) {
  std::vector<std::vector<double>> samples(count);
  for (auto& s : samples) s.reserve(static_cast<std::size_t>(o.repeats));
  latency_progress p;
  p.rounds = static_cast<std::size_t>(o.warmup) + static_cast<std::size_t>(o.repeats);
  for (; p.round < p.rounds; ++p.round) {
    const bool timed = p.round >= static_cast<std::size_t>(o.warmup);
    for (std::size_t i = 0; i < count; ++i) {
      for (int attempt = 0;; ++attempt) {
        const long switches = context_switches();
        b.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        run(i);
        b.synchronize();
        const auto t1 = std::chrono::steady_clock::now();
        if (!timed) break;
        const bool disturbed = context_switches() != switches;
        if (disturbed && attempt < o.retries) {
          ++p.retried;
          continue;
        }
        p.disturbed += disturbed ? 1 : 0;
        ++p.measurements;
        samples[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        break;
      }
    }
    if (o.progress) {
      latency_progress now = p;
      ++now.round;
      o.progress(now);
    }
  }
  std::vector<double> medians;
  medians.reserve(count);
  for (auto& s : samples) medians.push_back(median_of(std::move(s)));
  return {std::move(medians), p};
}

}  // namespace detail

// The latency table of `net`'s space on its backend: every (layer, choice) timed alone on a
// synthetic input of that layer's shape, in eval mode, and the stem plus the head as the fixed
// part. The times are the plain per-op medians, not calibrated (see calibrate_latency_table).
template <class B, class Space>
cost::latency_table profile_latency_table(B& b, supernet<B, Space>& net, context<B>& ctx,
                                          const latency_profile_options& o = {}) {
  detail::check_timing_options(o, "profile_latency_table");
  const index n = o.batch;
  pcnas::rng r(o.seed);

  // One input per layer, shared by its choices; the entries are [stem, every (layer, choice), head].
  const activation<B> images = detail::synthetic_activation(ctx, detail::image_shape<Space>(n), r);
  std::vector<activation<B>> inputs;
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    inputs.push_back(detail::synthetic_activation(ctx, detail::nhwc(n, Space::layers[l].in), r));
  const activation<B> features = detail::synthetic_activation(ctx, detail::nhwc(n, Space::body_output), r);

  struct entry {
    std::size_t layer, choice;
  };
  std::vector<entry> entries;
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c) entries.push_back({l, c});
  const std::size_t stem_at = entries.size(), head_at = stem_at + 1;

  // The handles above stay alive, so no op may overwrite its input in place.
  const auto times = detail::timed_rounds(b, entries.size() + 2, o, [&](std::size_t i) {
    if (i == stem_at)
      (void)net.forward_stem(ctx, images, mode::eval);
    else if (i == head_at)
      (void)net.forward_head(ctx, features, mode::eval);
    else
      (void)net.forward_layer(ctx, inputs[entries[i].layer], entries[i].layer, entries[i].choice, mode::eval);
  }).first;

  cost::latency_table table;
  table.space = std::string(space::space_name<Space>());
  table.choices = choice_name_table<Space>();
  table.model.fixed = times[stem_at] + times[head_at];
  table.model.per_layer.resize(Space::num_layers);
  for (std::size_t i = 0; i < entries.size(); ++i) table.model.per_layer[entries[i].layer].push_back(times[i]);
  table.provenance = {.device = o.device.empty() ? host_cpu_name() : o.device,
                      .backend = std::string(b.name()),
                      .batch = o.batch,
                      .threads = backend_threads(b),
                      .date = utc_timestamp(),
                      .library_version = pcnas::version,
                      .repeats = o.repeats,
                      .warmup = o.warmup};
  table.validate();
  return table;
}

// End-to-end latency of each architecture (stem, its layers, head, in eval mode), median
// milliseconds with the same protocol as the table, the architectures interleaved in rounds.
template <class B, class Space>
std::vector<double> measure_latencies(B& b, supernet<B, Space>& net, context<B>& ctx,
                                      std::span<const space::architecture<Space>> archs,
                                      const latency_profile_options& o = {}) {
  detail::check_timing_options(o, "measure_latencies");
  for (const auto& a : archs) space::check_arch<Space>(a);
  pcnas::rng r(o.seed);
  const activation<B> images = detail::synthetic_activation(ctx, detail::image_shape<Space>(o.batch), r);
  return detail::timed_rounds(b, archs.size(), o, [&](std::size_t i) {
    activation<B> x = net.forward_stem(ctx, images, mode::eval);
    for (std::size_t l = 0; l < Space::num_layers; ++l)
      x = net.forward_layer(ctx, std::move(x), l, static_cast<std::size_t>(archs[i][l]), mode::eval);
    (void)net.forward_head(ctx, std::move(x), mode::eval);
  }).first;
}

template <class B, class Space>
double measure_latency(B& b, supernet<B, Space>& net, context<B>& ctx, const space::architecture<Space>& arch,
                       const latency_profile_options& o = {}) {
  return measure_latencies(b, net, ctx, std::span<const space::architecture<Space>>(&arch, 1), o).front();
}

// `count` architectures drawn uniformly (with replacement) from the space by the constraint's
// exact sampler, leaving out those in `exclude` (a calibration sample, so that a check of the
// calibrated table is made on other architectures). Throws when `exclude` is the whole space.
template <class Space>
std::vector<space::architecture<Space>> sample_architectures(std::size_t count, std::uint64_t seed,
                                                             std::span<const space::architecture<Space>> exclude = {}) {
  const std::set<space::architecture<Space>> excluded(exclude.begin(), exclude.end());
  if (Space::num_architectures_exact && excluded.size() >= Space::num_architectures && count > 0)
    throw std::invalid_argument("sample_architectures: all " + std::to_string(Space::num_architectures) +
                                " architectures of '" + std::string(space::space_name<Space>()) +
                                "' are excluded; none is left to draw");
  const auto sampler = cost::constraint::unconstrained(
      std::vector<std::size_t>(Space::num_choices.begin(), Space::num_choices.end()));
  pcnas::rng r(seed);
  std::vector<space::architecture<Space>> out;
  out.reserve(count);
  while (out.size() < count) {
    // A redraw succeeds with probability (N - excluded) / N > 0, so this ends; drawing uniformly
    // and redrawing the excluded ones is uniform over the rest.
    const auto arch = space::arch_from_indices<Space>(sampler.sample(r));
    if (!excluded.contains(arch)) out.push_back(arch);
  }
  return out;
}

// A table corrected by a linear fit against end-to-end measurements.
struct latency_calibration {
  // measured ≈ a · (per-op sum) + b, applied to the table as a · fixed + b and a · per-layer.
  cost::linear_calibration fit;
  // "least squares" or, when the unconstrained fit would make the fixed part negative,
  // "least squares with fixed >= 0" (the fit on that boundary, b = -a · fixed).
  std::string method;
  cost::additive_cost_model uncalibrated;  // the per-op sums before the fit
  std::vector<std::vector<int>> architectures;  // the calibration sample
  std::vector<double> measured;                 // its end-to-end medians, ms
  cost::prediction_summary before;  // the per-op sum on the calibration sample
  cost::prediction_summary after;   // the calibrated table on the same sample (in-sample)
};

struct latency_calibration_options {
  std::size_t architectures = 30;  // the calibration sample, drawn uniformly
  std::uint64_t seed = 0x5eed'ca1b;
};

// The least-squares line measured ≈ a · predicted + b under the constraint that the table's
// fixed part, a · fixed + b, stays non-negative (a latency table's times are).
inline cost::linear_calibration fit_nonnegative_calibration(std::span<const double> predicted,
                                                            std::span<const double> measured, double fixed,
                                                            bool* on_boundary = nullptr) {
  cost::linear_calibration c = cost::fit_calibration(predicted, measured);
  if (on_boundary) *on_boundary = false;
  if (c.a * fixed + c.b >= 0.0) return c;
  // The problem is convex, so the constrained optimum lies on the boundary b = -a · fixed:
  // measured ≈ a · (predicted - fixed).
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    num += measured[i] * (predicted[i] - fixed);
    den += (predicted[i] - fixed) * (predicted[i] - fixed);
  }
  if (!(den > 0.0)) throw std::invalid_argument("fit_nonnegative_calibration: the layers cost nothing");
  c.a = num / den;
  c.b = -c.a * fixed;
  if (on_boundary) *on_boundary = true;
  return c;
}

// Measures a calibration sample end to end (with the table's batch and protocol), fits
// measured ≈ a · (per-op sum) + b, and replaces the table's model by the calibrated one, which
// stays additive. The sample is drawn from `co.seed`; check the result on other architectures
// (sample_architectures with `exclude` = the returned sample).
template <class B, class Space>
latency_calibration calibrate_latency_table(B& b, supernet<B, Space>& net, context<B>& ctx, cost::latency_table& table,
                                            const latency_calibration_options& co = {},
                                            latency_profile_options o = {}) {
  cost::check_same_space(table, space::space_name<Space>(), choice_name_table<Space>());
  if (co.architectures < 3)
    throw std::invalid_argument("calibrate_latency_table: a line needs at least 3 architectures, got " +
                                std::to_string(co.architectures));
  o.batch = table.provenance.batch;
  const auto archs = sample_architectures<Space>(co.architectures, co.seed);
  latency_calibration cal;
  cal.uncalibrated = table.model;
  cal.measured = measure_latencies(b, net, ctx, std::span<const space::architecture<Space>>(archs), o);
  std::vector<double> predicted;
  for (const auto& a : archs) {
    cal.architectures.emplace_back(a.begin(), a.end());
    predicted.push_back(table.model.predict(a));
  }
  bool on_boundary = false;
  cal.fit = fit_nonnegative_calibration(predicted, cal.measured, table.model.fixed, &on_boundary);
  if (!(cal.fit.a > 0.0))
    throw std::runtime_error("calibrate_latency_table: the fitted slope is " + std::to_string(cal.fit.a) +
                             "; the per-op times do not track the end-to-end times (too few repeats on a "
                             "busy machine?)");
  cal.method = on_boundary ? "least squares with fixed >= 0" : "least squares";
  cal.before = cost::summarize_predictions(predicted, cal.measured);
  table.model = cost::apply_calibration(cal.fit, table.model);
  std::vector<double> calibrated;
  for (const auto& a : archs) calibrated.push_back(table.model.predict(a));
  cal.after = cost::summarize_predictions(calibrated, cal.measured);
  table.validate();
  return cal;
}

}  // namespace pcnas::nn
