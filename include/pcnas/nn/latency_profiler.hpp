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
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <functional>
#include <set>
#include <span>
#include <stdexcept>
#include <optional>
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
// way. Such a measurement is taken again, up to `retries` times (and while the retries do not
// outnumber the measurements kept, plus one round); if none is clean the last one is kept and
// counted in latency_progress::disturbed, so that a caller can tell a table
// measured on a busy machine. Where getrusage is missing nothing is retried. A backend with a
// timer of its own (backend::has_device_timer: CUDA events) is timed by it instead, and never
// retried: its host thread sleeps while it waits, by design.
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
  // Recorded in the provenance; empty: the backend's device_description() when it has one,
  // else the host CPU's model name, from /proc/cpuinfo.
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

// The device a backend computes on: its device_description() when it has one (a GPU's name,
// driver and clocks), else the host CPU's name.
template <class B>
std::string device_name(const B& b) {
  if constexpr (backend::has_device_description<B>)
    return std::string(b.device_description());
  else
    return host_cpu_name();
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

// The space's choice names as runtime strings (space/arch.hpp).
using space::choice_name_table;

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

inline double median_of(std::vector<double> v) { return cost::median(std::move(v)); }

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
template <class B, class Run>
std::pair<std::vector<double>, latency_progress> timed_rounds(B& b, std::size_t count, const latency_profile_options& o,
                                                              Run&& run) {
  std::vector<std::vector<double>> samples(count);
  for (auto& s : samples) s.reserve(static_cast<std::size_t>(o.repeats));
  latency_progress p;
  p.rounds = static_cast<std::size_t>(o.warmup) + static_cast<std::size_t>(o.repeats);
  // Written rounds > round: nvcc reads `p.round <` as the start of a template argument list.
  for (; p.rounds > p.round; ++p.round) {
    const bool timed = p.round >= static_cast<std::size_t>(o.warmup);
    for (std::size_t i = 0; i < count; ++i) {
      if constexpr (backend::has_device_timer<B>) {
        // The device's clock: what the host thread did meanwhile does not enter the time.
        b.synchronize();
        const auto token = b.start_timer();
        run(i);
        const double ms = static_cast<double>(b.elapsed_ms(token));
        if (timed) {
          ++p.measurements;
          samples[i].push_back(ms);
        }
      } else {
        for (int attempt = 0;; ++attempt) {
          const long switches = context_switches();
          b.synchronize();
          const auto t0 = std::chrono::steady_clock::now();
          run(i);
          b.synchronize();
          const auto t1 = std::chrono::steady_clock::now();
          if (!timed) break;
          const bool disturbed = context_switches() != switches;
          // Under sustained load a retry is rarely clean and only multiplies the time: retries
          // stop once they outnumber the measurements kept plus one round.
          const bool may_retry = attempt < o.retries && p.retried < p.measurements + count;
          if (disturbed && may_retry) {
            ++p.retried;
            continue;
          }
          p.disturbed += disturbed ? 1 : 0;
          ++p.measurements;
          samples[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          break;
        }
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

// What the profiler needs from a network (nn::supernet models both; so can a user's own): its
// space as `space_type`, and a forward pass in eval mode on a path, for end-to-end times...
template <class N, class B>
concept path_network = requires(N& n, context<B>& ctx, const activation<B>& x, std::span<const int> arch) {
  typename N::space_type;
  n.forward(ctx, x, arch, mode::eval);
};

// ...and, for a per-op table, the stem, one (layer, choice) and the head alone.
template <class N, class B>
concept layerwise_network = path_network<N, B> && requires(N& n, context<B>& ctx, const activation<B>& x) {
  n.forward_stem(ctx, x, mode::eval);
  n.forward_layer(ctx, x, std::size_t{}, std::size_t{}, mode::eval);
  n.forward_head(ctx, x, mode::eval);
};

// A per-op table and end-to-end times measured in the same rounds.
struct latency_profile {
  cost::latency_table table;       // per-op medians, not calibrated
  std::vector<double> end_to_end;  // median ms of each architecture given, in their order
};

// The latency table of `net`'s space on its backend: every (layer, choice) timed alone on a
// synthetic input of that layer's shape, in eval mode, and the stem plus the head as the fixed
// part; and each of `archs` end to end, its calls interleaved with the per-op ones in the same
// rounds. A machine's speed may drift by tens of percent within a minute (we saw it on shared
// virtual machines with nothing else running); measured in the same rounds, the per-op sums
// and the end-to-end times see the same drift, so that a calibration fitted on them corrects
// how the sum of parts differs from the whole, not how the machine changed between two runs.
template <class B, class Net, class Space = typename Net::space_type>
  requires layerwise_network<Net, B>
latency_profile profile_latency(B& b, Net& net, context<B>& ctx,
                                std::span<const space::architecture<Space>> archs,
                                const latency_profile_options& o = {}) {
  detail::check_timing_options(o, "profile_latency");
  for (const auto& a : archs) space::check_arch<Space>(a);
  const index n = o.batch;
  pcnas::rng r(o.seed);

  // The entries in the order of a forward pass: stem, every (layer, choice), head; then the
  // architectures. One input per layer, shared by its choices. (Rewriting the input before each
  // call, so that it sits in the caches as if the previous layer had just written it, moved
  // the per-op sum further from the end-to-end times rather than closer on the Xeon of our
  // measurements; the calibration takes up the difference either way.)
  struct entry {
    std::size_t layer, choice;
  };
  std::vector<entry> entries;
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c) entries.push_back({l, c});
  const std::size_t head_at = entries.size() + 1;  // the stem is entry 0, (layer, choice) k is k + 1
  const std::size_t first_arch = head_at + 1;

  const activation<B> images = detail::synthetic_activation(ctx, detail::image_shape<Space>(n), r);
  std::vector<activation<B>> inputs;
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    inputs.push_back(detail::synthetic_activation(ctx, detail::nhwc(n, Space::layers[l].in), r));
  const activation<B> features = detail::synthetic_activation(ctx, detail::nhwc(n, Space::body_output), r);

  // The handles above stay alive, so no op may overwrite its input in place.
  const auto times = detail::timed_rounds(b, first_arch + archs.size(), o, [&](std::size_t i) {
                       if (i == 0) {
                         (void)net.forward_stem(ctx, images, mode::eval);
                       } else if (i < head_at) {
                         const entry& e = entries[i - 1];
                         (void)net.forward_layer(ctx, inputs[e.layer], e.layer, e.choice, mode::eval);
                       } else if (i == head_at) {
                         (void)net.forward_head(ctx, features, mode::eval);
                       } else {
                         (void)net.forward(ctx, images, archs[i - first_arch], mode::eval);
                       }
                     }).first;

  latency_profile out;
  cost::latency_table& table = out.table;
  table.space = std::string(space::space_name<Space>());
  table.choices = choice_name_table<Space>();
  table.model.fixed = times[0] + times[head_at];
  table.model.per_layer.resize(Space::num_layers);
  for (std::size_t k = 0; k < entries.size(); ++k) table.model.per_layer[entries[k].layer].push_back(times[k + 1]);
  table.provenance = {.device = !o.device.empty() ? o.device : device_name(b),
                      .backend = std::string(b.name()),
                      .batch = o.batch,
                      .threads = backend_threads(b),
                      .date = utc_timestamp(),
                      .library_version = pcnas::version,
                      .repeats = o.repeats,
                      .warmup = o.warmup};
  table.validate();
  out.end_to_end.assign(times.begin() + static_cast<std::ptrdiff_t>(first_arch), times.end());
  return out;
}

// The per-op table alone (profile_latency without architectures); not calibrated.
template <class B, class Net, class Space = typename Net::space_type>
  requires layerwise_network<Net, B>
cost::latency_table profile_latency_table(B& b, Net& net, context<B>& ctx,
                                          const latency_profile_options& o = {}) {
  return profile_latency(b, net, ctx, std::span<const space::architecture<Space>>{}, o).table;
}

// End-to-end latency of each architecture (stem, its layers, head, in eval mode), median
// milliseconds with the same protocol as the table, the architectures interleaved in rounds.
template <class B, class Net, class Space = typename Net::space_type>
  requires path_network<Net, B>
std::vector<double> measure_latencies(B& b, Net& net, context<B>& ctx,
                                      std::span<const space::architecture<Space>> archs,
                                      const latency_profile_options& o = {}) {
  detail::check_timing_options(o, "measure_latencies");
  for (const auto& a : archs) space::check_arch<Space>(a);
  pcnas::rng r(o.seed);
  const activation<B> images = detail::synthetic_activation(ctx, detail::image_shape<Space>(o.batch), r);
  return detail::timed_rounds(b, archs.size(), o, [&](std::size_t i) {
    (void)net.forward(ctx, images, archs[i], mode::eval);
  }).first;
}

template <class B, class Net, class Space = typename Net::space_type>
  requires path_network<Net, B>
double measure_latency(B& b, Net& net, context<B>& ctx, const space::architecture<Space>& arch,
                       const latency_profile_options& o = {}) {
  return measure_latencies(b, net, ctx, std::span<const space::architecture<Space>>(&arch, 1), o).front();
}

// How a table's end-to-end sample is measured. `alone` (the default): the per-op rounds first,
// then the architectures in rounds of their own, as a check or a deployment in another process
// measures them; the calibration then targets that protocol. `with_ops`: interleaved with the
// per-op calls in the same rounds (profile_latency), immune to drift between the two but ~1–6 %
// faster than the same architectures measured alone at batch 32 on our AMD EPYC, and the
// calibration carried that bias into every other process.
enum class end_to_end_protocol { alone, with_ops };

template <class B, class Net, class Space = typename Net::space_type>
  requires layerwise_network<Net, B>
latency_profile profile_for_calibration(B& b, Net& net, context<B>& ctx, std::span<const space::architecture<Space>> archs,
                                        end_to_end_protocol protocol, const latency_profile_options& o) {
  if (protocol == end_to_end_protocol::with_ops) return profile_latency(b, net, ctx, archs, o);
  latency_profile out;
  out.table = profile_latency(b, net, ctx, std::span<const space::architecture<Space>>{}, o).table;
  out.end_to_end = measure_latencies(b, net, ctx, archs, o);
  return out;
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

// The calibration's record (cost/latency_table.hpp), under the names this header used first.
using calibration_candidate = cost::calibration_candidate;
using latency_calibration = cost::latency_calibration;

struct latency_calibration_options {
  std::size_t architectures = 50;  // the calibration sample, drawn uniformly
  end_to_end_protocol protocol = end_to_end_protocol::alone;
  std::uint64_t seed = 0x5eed'ca1b;
};

// The least-squares line measured ≈ a · predicted + b under the constraint that the table's
// fixed part, a · fixed + b, stays non-negative (a latency table's times are).
struct affine_calibration {
  cost::linear_calibration line;
  bool on_boundary = false;  // the free line would have made the fixed part negative
};

inline affine_calibration fit_nonnegative_calibration(std::span<const double> predicted,
                                                      std::span<const double> measured, double fixed) {
  affine_calibration c{.line = cost::fit_calibration(predicted, measured), .on_boundary = false};
  if (c.line.a * fixed + c.line.b >= 0.0) return c;
  // The problem is convex, so the constrained optimum lies on the boundary b = -a · fixed:
  // measured ≈ a · (predicted - fixed).
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    num += measured[i] * (predicted[i] - fixed);
    den += (predicted[i] - fixed) * (predicted[i] - fixed);
  }
  if (!(den > 0.0)) throw std::invalid_argument("fit_nonnegative_calibration: the layers cost nothing");
  c.line = {.a = num / den, .b = -num / den * fixed};
  c.on_boundary = true;
  return c;
}

// measured ≈ a · predicted with the a that minimises the squared relative errors
// Σ ((a · p - m) / m)², the quantity RMSPE reports.
inline cost::linear_calibration fit_relative_scale(std::span<const double> predicted, std::span<const double> measured) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    const double q = predicted[i] / measured[i];
    num += q;
    den += q * q;
  }
  if (!(den > 0.0)) throw std::invalid_argument("fit_relative_scale: every prediction is zero");
  return {.a = num / den, .b = 0.0};
}

namespace detail {

template <class Fit>
double leave_one_out_rmspe(std::span<const double> predicted, std::span<const double> measured, Fit&& fit) {
  std::vector<double> p, m;
  double squares = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    p.clear();
    m.clear();
    for (std::size_t j = 0; j < predicted.size(); ++j)
      if (j != i) {
        p.push_back(predicted[j]);
        m.push_back(measured[j]);
      }
    const cost::linear_calibration c = fit(std::span<const double>(p), std::span<const double>(m));
    const double e = (c.a * predicted[i] + c.b - measured[i]) / measured[i];
    squares += e * e;
  }
  return std::sqrt(squares / static_cast<double>(predicted.size()));
}

}  // namespace detail

// Chooses and applies the calibration of `table` from `archs` and their end-to-end medians
// (see latency_calibration). Returns how it was calibrated.
template <class Space>
latency_calibration apply_latency_calibration(cost::latency_table& table,
                                              std::span<const space::architecture<Space>> archs,
                                              std::span<const double> measured) {
  cost::check_same_space(table, space::space_name<Space>(), choice_name_table<Space>());
  if (archs.size() < 3)
    throw std::invalid_argument("latency calibration: a line needs at least 3 architectures, got " +
                                std::to_string(archs.size()));
  if (measured.size() != archs.size())
    throw std::invalid_argument("latency calibration: " + std::to_string(archs.size()) + " architectures but " +
                                std::to_string(measured.size()) + " measurements");
  latency_calibration cal;
  cal.uncalibrated = table.model;
  cal.measured.assign(measured.begin(), measured.end());
  std::vector<double> predicted;
  for (const auto& a : archs) {
    cal.architectures.emplace_back(a.begin(), a.end());
    predicted.push_back(table.model.predict(a));
  }
  const std::span<const double> p(predicted), m(cal.measured);
  const double fixed = table.model.fixed;
  const auto affine = [fixed](std::span<const double> pp, std::span<const double> mm) {
    return fit_nonnegative_calibration(pp, mm, fixed).line;
  };
  const auto none = [](std::span<const double>, std::span<const double>) { return cost::linear_calibration{}; };
  cal.candidates.push_back({.form = "none", .fit = {}, .loo_rmspe = detail::leave_one_out_rmspe(p, m, none)});
  cal.candidates.push_back(
      {.form = "scale", .fit = fit_relative_scale(p, m), .loo_rmspe = detail::leave_one_out_rmspe(p, m, fit_relative_scale)});
  // A line needs two distinct predictions in every leave-one-out subset; without them (all
  // architectures equally fast per the table) only the other forms compete.
  try {
    cal.candidates.push_back({.form = "affine", .fit = affine(p, m), .loo_rmspe = detail::leave_one_out_rmspe(p, m, affine)});
  } catch (const std::invalid_argument&) {
  }
  // The simplest form wins ties (up to rounding): the candidates are in order of simplicity. A
  // slope that is not positive (per-op times that do not track the end-to-end ones at all)
  // would turn the table's times negative and is never applied; "none" always qualifies.
  const calibration_candidate* best = &cal.candidates.front();
  for (const auto& c : cal.candidates)
    if (c.fit.a > 0.0 && c.loo_rmspe < best->loo_rmspe - 1e-9) best = &c;
  cal.fit = best->fit;
  cal.method = best->form;
  if (best->form == "affine" && fit_nonnegative_calibration(p, m, fixed).on_boundary) cal.method += " with fixed >= 0";
  cal.before = cost::summarize_predictions(p, m);
  table.model = cost::apply_calibration(cal.fit, table.model);
  std::vector<double> calibrated;
  for (const auto& a : archs) calibrated.push_back(table.model.predict(a));
  cal.after = cost::summarize_predictions(calibrated, m);
  table.validate();
  return cal;
}

// A calibrated table and how it was calibrated.
struct calibrated_latency_table {
  cost::latency_table table;
  latency_calibration calibration;
};

// The per-op table and a calibration sample (drawn from `co.seed`) measured end to end right
// after it (end_to_end_protocol), then calibrated: the way to build a table. Check the result on other
// architectures (sample_architectures with `exclude` = the calibration sample).
template <class B, class Net, class Space = typename Net::space_type>
  requires layerwise_network<Net, B>
calibrated_latency_table profile_calibrated_latency_table(B& b, Net& net, context<B>& ctx,
                                                          const latency_calibration_options& co = {},
                                                          const latency_profile_options& o = {}) {
  if (co.architectures < 3)
    throw std::invalid_argument("profile_calibrated_latency_table: a line needs at least 3 architectures, got " +
                                std::to_string(co.architectures));
  const auto archs = sample_architectures<Space>(co.architectures, co.seed);
  const std::span<const space::architecture<Space>> sample(archs);
  auto profile = profile_for_calibration(b, net, ctx, sample, co.protocol, o);
  calibrated_latency_table out{.table = std::move(profile.table), .calibration = {}};
  out.calibration = apply_latency_calibration<Space>(out.table, sample, std::span<const double>(profile.end_to_end));
  return out;
}

// Calibrates a table measured earlier: measures a calibration sample end to end now (with the
// table's batch) and fits on it. The machine's speed may have drifted since the table was
// measured, and the fit then absorbs the drift; profile_calibrated_latency_table avoids that.
template <class B, class Net, class Space = typename Net::space_type>
  requires path_network<Net, B>
latency_calibration calibrate_latency_table(B& b, Net& net, context<B>& ctx, cost::latency_table& table,
                                            const latency_calibration_options& co = {},
                                            latency_profile_options o = {}) {
  cost::check_same_space(table, space::space_name<Space>(), choice_name_table<Space>());
  if (co.architectures < 3)
    throw std::invalid_argument("calibrate_latency_table: a line needs at least 3 architectures, got " +
                                std::to_string(co.architectures));
  o.batch = table.provenance.batch;
  const auto archs = sample_architectures<Space>(co.architectures, co.seed);
  const std::span<const space::architecture<Space>> sample(archs);
  const auto measured = measure_latencies(b, net, ctx, sample, o);
  return apply_latency_calibration<Space>(table, sample, std::span<const double>(measured));
}

// ------------------------------------------------------------------------------ building and checking a table

struct latency_build_options {
  std::size_t calibrate = 50;           // architectures to calibrate on (0: the plain per-op sums)
  std::uint64_t calibration_seed = latency_calibration_options{}.seed;
  std::size_t check = 0;                // other architectures, measured with the calibration sample, to check on
  std::uint64_t check_seed = 1;
  end_to_end_protocol protocol = end_to_end_protocol::alone;
};

// How a model predicted architectures it was not fitted on, measured end to end.
struct latency_check {
  std::vector<std::vector<int>> architectures;
  std::vector<double> measured;                       // ms, end-to-end medians
  std::vector<double> predicted;                      // by the model checked
  cost::prediction_summary summary;
  std::optional<cost::prediction_summary> uncalibrated;  // the plain per-op sums, when calibrated
  // With reference architectures (latency_reference): the machine's speed now against the
  // table's (cost::speed_ratio, > 1 when slower now), their times now, and the predictions
  // scaled by it, checked on the same measurements.
  std::optional<double> speed_ratio;
  std::vector<double> reference_measured;
  std::optional<cost::prediction_summary> at_current_speed;
  double median_measured() const { return cost::median(measured); }
};

// Architectures a table's times were measured with, and their end-to-end medians then: measured
// again beside a check, they tell how the machine's speed has moved since (cost::speed_ratio).
template <class Space>
struct latency_reference {
  std::vector<space::architecture<Space>> architectures;
  std::vector<double> measured;  // ms, when the table was built
};

// `count` of a calibration sample as references, spread over its range: the architectures at the
// quantiles (i + 1/2) / count of its measured times.
template <class Space>
latency_reference<Space> pick_latency_reference(std::span<const space::architecture<Space>> sample,
                                                std::span<const double> measured, std::size_t count = 5) {
  if (sample.size() != measured.size())
    throw std::invalid_argument("pick_latency_reference: " + std::to_string(sample.size()) + " architectures but " +
                                std::to_string(measured.size()) + " times");
  std::vector<std::size_t> order(sample.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return measured[x] < measured[y]; });
  latency_reference<Space> ref;
  count = std::min(count, sample.size());
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = order[(2 * i + 1) * order.size() / (2 * count)];
    ref.architectures.push_back(sample[at]);
    ref.measured.push_back(measured[at]);
  }
  return ref;
}

struct built_latency_table {
  cost::latency_table table;
  std::optional<latency_calibration> calibration;
  std::optional<latency_check> check;  // on `check` held-out architectures
};

// The per-op table, then the calibration sample and the check sample end to end, together in
// the same rounds (so that no drift of the machine's speed between the two can blur the check),
// by default in rounds of their own as another process measures them (end_to_end_protocol);
// the calibration fitted on its sample and checked on the others.
template <class B, class Net, class Space = typename Net::space_type>
  requires layerwise_network<Net, B>
built_latency_table build_latency_table(B& b, Net& net, context<B>& ctx, const latency_build_options& bo,
                                        const latency_profile_options& o = {}) {
  using arch = space::architecture<Space>;
  if (bo.calibrate != 0 && bo.calibrate < 3)
    throw std::invalid_argument("build_latency_table: a calibration needs 0 or at least 3 architectures, got " +
                                std::to_string(bo.calibrate));
  const auto sample = sample_architectures<Space>(bo.calibrate, bo.calibration_seed);
  const auto held_out = sample_architectures<Space>(bo.check, bo.check_seed, std::span<const arch>(sample));
  std::vector<arch> archs(sample);
  archs.insert(archs.end(), held_out.begin(), held_out.end());
  auto profile = profile_for_calibration(b, net, ctx, std::span<const arch>(archs), bo.protocol, o);
  built_latency_table out{.table = std::move(profile.table), .calibration = {}, .check = {}};
  const std::span<const double> measured(profile.end_to_end);
  if (!sample.empty())
    out.calibration =
        apply_latency_calibration<Space>(out.table, std::span<const arch>(sample), measured.first(sample.size()));
  if (!held_out.empty()) {
    latency_check c;
    const auto tail = measured.subspan(sample.size());
    c.measured.assign(tail.begin(), tail.end());
    std::vector<double> plain;
    for (const auto& a : held_out) {
      c.architectures.emplace_back(a.begin(), a.end());
      c.predicted.push_back(out.table.model.predict(a));
      if (out.calibration) plain.push_back(out.calibration->uncalibrated.predict(a));
    }
    c.summary = cost::summarize_predictions(c.predicted, c.measured);
    if (out.calibration) c.uncalibrated = cost::summarize_predictions(plain, c.measured);
    out.check = std::move(c);
  }
  return out;
}

// A model (a table, calibrated or not, or a device-free one) checked against `archs` measured
// end to end now; `uncalibrated`, when given, is checked on the same measurements. With a
// `reference`, its architectures are measured in the same rounds, and the predictions scaled by
// the machine's speed ratio since are checked too (latency_check::at_current_speed).
template <class B, class Net, class Space = typename Net::space_type>
  requires path_network<Net, B>
latency_check check_latency_model(B& b, Net& net, context<B>& ctx, const cost::additive_cost_model& model,
                                  std::span<const space::architecture<Space>> archs, const latency_profile_options& o,
                                  const std::optional<cost::additive_cost_model>& uncalibrated = std::nullopt,
                                  const latency_reference<Space>& reference = {}) {
  if (reference.architectures.size() != reference.measured.size())
    throw std::invalid_argument("check_latency_model: " + std::to_string(reference.architectures.size()) +
                                " reference architectures but " + std::to_string(reference.measured.size()) +
                                " times");
  latency_check c;
  std::vector<space::architecture<Space>> all(archs.begin(), archs.end());
  all.insert(all.end(), reference.architectures.begin(), reference.architectures.end());
  c.measured = measure_latencies(b, net, ctx, std::span<const space::architecture<Space>>(all), o);
  c.reference_measured.assign(c.measured.begin() + static_cast<std::ptrdiff_t>(archs.size()), c.measured.end());
  c.measured.resize(archs.size());
  std::vector<double> plain;
  for (const auto& a : archs) {
    c.architectures.emplace_back(a.begin(), a.end());
    c.predicted.push_back(model.predict(a));
    if (uncalibrated) plain.push_back(uncalibrated->predict(a));
  }
  c.summary = cost::summarize_predictions(c.predicted, c.measured);
  if (uncalibrated) c.uncalibrated = cost::summarize_predictions(plain, c.measured);
  if (!reference.architectures.empty()) {
    c.speed_ratio = cost::speed_ratio(reference.measured, c.reference_measured);
    std::vector<double> scaled(c.predicted);
    for (double& p : scaled) p *= *c.speed_ratio;
    c.at_current_speed = cost::summarize_predictions(scaled, c.measured);
  }
  return c;
}

}  // namespace pcnas::nn
