// The latency profiler over any backend: a table of the space's shape with positive finite
// times and complete provenance, saved and loaded unchanged, end-to-end measurement, the
// calibration's fit and bookkeeping, and sampling that leaves a calibration sample out. Nothing
// here compares two times: on a shared machine noise could break any such relation.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/json/latency_table.hpp>
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/space/presets.hpp>

#include "support/naive_backend.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace pcnas;
using micro = presets::fmnist_micro;
using fast = backend::eigen::backend;
using naive = user_naive::backend<double>;

// Batch 2 and a few rounds keep the whole file well under a second on either backend.
nn::latency_profile_options quick() {
  nn::latency_profile_options o;
  o.batch = 2;
  o.warmup = 1;
  o.repeats = 3;
  return o;
}

bool is_zero_choice(std::size_t layer, std::size_t choice) { return micro::choice_names[layer][choice] == "zero"; }

std::filesystem::path temp_file(const std::string& name) {
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::filesystem::temp_directory_path() / ("pcnas_" + name + "_" + std::to_string(stamp) + ".json");
}

}  // namespace

TEST_CASE_TEMPLATE("a profiled table has the space's shape, positive finite times and full provenance", B, naive,
                   fast) {
  B b;
  nn::supernet<B, micro> net(b, {.seed = 0});
  nn::context<B> ctx(b);
  std::size_t progress_calls = 0, last_done = 0, last_total = 0;
  auto o = quick();
  std::size_t kept = 0;
  o.progress = [&](const nn::latency_progress& p) {
    ++progress_calls;
    last_done = p.round;
    last_total = p.rounds;
    kept = p.measurements;
  };
  const auto t = nn::profile_latency_table(b, net, ctx, o);

  CHECK(t.space == "fmnist_micro");
  CHECK(t.choices == nn::choice_name_table<micro>());
  REQUIRE(t.model.per_layer.size() == micro::num_layers);
  for (std::size_t l = 0; l < micro::num_layers; ++l) {
    REQUIRE(t.model.per_layer[l].size() == micro::num_choices[l]);
    for (std::size_t c = 0; c < micro::num_choices[l]; ++c) {
      const double ms = t.model.per_layer[l][c];
      CHECK(std::isfinite(ms));
      // A skip does no work, so only a non-negative time is certain for it.
      if (is_zero_choice(l, c))
        CHECK(ms >= 0.0);
      else
        CHECK(ms > 0.0);
    }
  }
  CHECK(std::isfinite(t.model.fixed));
  CHECK(t.model.fixed > 0.0);
  CHECK(t.model.unit == "ms");
  CHECK(t.model.name == "latency");

  const auto& p = t.provenance;
  CHECK(!p.device.empty());
  CHECK(p.backend == b.name());
  CHECK(p.batch == 2);
  CHECK(p.threads == nn::backend_threads(b));
  CHECK(p.threads >= 1);
  CHECK(p.library_version == std::string(pcnas::version));
  CHECK(p.repeats == 3);
  CHECK(p.warmup == 1);
  // "YYYY-MM-DDTHH:MM:SSZ"
  REQUIRE(p.date.size() == 20);
  CHECK(p.date[4] == '-');
  CHECK(p.date[10] == 'T');
  CHECK(p.date[19] == 'Z');

  CHECK(progress_calls == 4);
  CHECK(last_done == 4);
  CHECK(last_total == 4);
  // Every entry (stem, each choice, head) once per timed round, disturbed or not.
  std::size_t entries = 2;
  for (auto n : micro::num_choices) entries += n;
  CHECK(kept == 3 * entries);
}

TEST_CASE("the naive backend has no threads() and is recorded as one thread") {
  naive b;
  CHECK(nn::backend_threads(b) == 1);
  fast f({.threads = 2});
  CHECK(nn::backend_threads(f) == f.threads());
}

TEST_CASE("a given device name is recorded instead of the host CPU's") {
  fast b({.threads = 1});
  nn::supernet<fast, micro> net(b, {.seed = 0});
  nn::context<fast> ctx(b);
  auto o = quick();
  o.repeats = 1;
  o.warmup = 0;
  o.device = "test device";
  CHECK(nn::profile_latency_table(b, net, ctx, o).provenance.device == "test device");
  CHECK(!nn::host_cpu_name().empty());
}

// The Eigen backend with a device clock of its own, as a GPU backend has: every measurement is
// one start_timer / elapsed_ms pair, and the clock says 0.25 ms each time.
struct clocked : fast {
  clocked() : fast({.threads = 1}) {}
  struct token {
    int id;
  };
  int started = 0, read = 0;
  token start_timer() { return {started++}; }
  double elapsed_ms(token t) {
    CHECK(t.id == read);  // read in the order started: one timer at a time
    ++read;
    return 0.25;
  }
  std::string device_description() const { return "clocked test device"; }
};
static_assert(backend::has_device_timer<clocked> && backend::has_device_description<clocked>);
static_assert(!backend::has_device_timer<fast> && !backend::has_device_description<fast>);

TEST_CASE("a backend's own clock times the table and its device name is recorded") {
  clocked b;
  nn::supernet<clocked, micro> net(b, {.seed = 0});
  nn::context<clocked> ctx(b);
  const auto archs = nn::sample_architectures<micro>(3, 1);
  const auto profile = nn::profile_latency(b, net, ctx, std::span<const space::architecture<micro>>(archs), quick());
  std::size_t entries = 2 + archs.size();
  for (auto c : micro::num_choices) entries += c;
  CHECK(b.started == static_cast<int>(entries) * (quick().warmup + quick().repeats));
  CHECK(b.read == b.started);
  CHECK(profile.table.provenance.device == "clocked test device");
  CHECK(profile.table.model.fixed == doctest::Approx(0.5));  // stem + head
  for (const auto& row : profile.table.model.per_layer)
    for (double t : row) CHECK(t == 0.25);
  for (double t : profile.end_to_end) CHECK(t == 0.25);
}

// The same clock, but saying 0.25 · slowdown ms: a machine whose speed moved since a table was built.
struct drifting : clocked {
  double slowdown = 1.0;
  double elapsed_ms(token t) { return clocked::elapsed_ms(t) * slowdown; }
};

TEST_CASE("references measured beside a check scale the table to the machine's speed now") {
  drifting b;
  b.slowdown = 1.25;
  nn::supernet<drifting, micro> net(b, {.seed = 0});
  nn::context<drifting> ctx(b);
  // A table that predicts 0.25 ms for every architecture: right at the speed of its build.
  cost::additive_cost_model model{.name = "latency", .unit = "ms", .fixed = 0.25, .per_layer = {}};
  for (auto n : micro::num_choices) model.per_layer.emplace_back(n, 0.0);
  const auto sample = nn::sample_architectures<micro>(9, 4);
  const std::vector<double> then{0.1, 0.9, 0.2, 0.8, 0.25, 0.7, 0.3, 0.6, 0.25};
  const auto ref = nn::pick_latency_reference<micro>(std::span<const space::architecture<micro>>(sample), then, 3);
  // The quantiles 1/6, 1/2 and 5/6 of the measured times (sorted positions 1, 4 and 7 of 9): 0.2,
  // 0.3 and 0.8.
  REQUIRE(ref.architectures.size() == 3);
  CHECK(ref.measured == std::vector<double>{0.2, 0.3, 0.8});
  CHECK(ref.architectures[0] == sample[2]);
  CHECK(ref.architectures[2] == sample[3]);

  // References that took 0.25 ms when the table was built, as every architecture did, and take
  // 0.3125 ms now: the machine is 1.25 times slower.
  const nn::latency_reference<micro> slow{.architectures = ref.architectures, .measured = {0.25, 0.25, 0.25}};
  const auto archs = nn::sample_architectures<micro>(4, 7, std::span<const space::architecture<micro>>(sample));
  const std::span<const space::architecture<micro>> checked(archs);
  const auto c = nn::check_latency_model(b, net, ctx, model, checked, quick(), std::nullopt, slow);
  REQUIRE(c.measured.size() == 4);
  CHECK(c.reference_measured == std::vector<double>(3, 0.3125));
  REQUIRE(c.speed_ratio);
  CHECK(*c.speed_ratio == doctest::Approx(1.25));
  // As stored the table is 20 % low on every architecture; scaled, exact.
  CHECK(c.summary.within_10 == 0.0);
  CHECK(c.summary.mean_bias == doctest::Approx(-0.2));
  REQUIRE(c.at_current_speed);
  CHECK(c.at_current_speed->within_10 == 1.0);
  CHECK(c.at_current_speed->mean_bias == doctest::Approx(0.0));
  CHECK(c.at_current_speed->rmspe == doctest::Approx(0.0));
  // Every architecture, references included, was measured in each round.
  CHECK(b.started == static_cast<int>(archs.size() + 3) * (quick().warmup + quick().repeats));

  // Without references the check is the table as stored.
  const auto plain = nn::check_latency_model(b, net, ctx, model, checked, quick());
  CHECK(!plain.speed_ratio);
  CHECK(!plain.at_current_speed);
  CHECK(plain.summary.mean_bias == doctest::Approx(-0.2));

  const nn::latency_reference<micro> torn{.architectures = ref.architectures, .measured = {0.2}};
  CHECK_THROWS_WITH_AS(nn::check_latency_model(b, net, ctx, model, checked, quick(), std::nullopt, torn),
                       doctest::Contains("3 reference architectures but 1 times"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nn::pick_latency_reference<micro>(std::span<const space::architecture<micro>>(sample),
                                                         std::vector<double>{1.0}, 3),
                       doctest::Contains("9 architectures but 1 times"), std::invalid_argument);
}

// A network of the user's own that can only run a whole path: enough for end-to-end latencies,
// not for a per-op table.
struct path_only {
  using space_type = micro;
  nn::supernet<fast, micro>& inner;
  int calls = 0;
  nn::activation<fast> forward(nn::context<fast>& ctx, const nn::activation<fast>& x, std::span<const int> arch,
                               nn::mode m) {
    ++calls;
    return inner.forward(ctx, x, arch, m);
  }
};
static_assert(nn::path_network<path_only, fast> && !nn::layerwise_network<path_only, fast>);
static_assert(nn::layerwise_network<nn::supernet<fast, micro>, fast>);

TEST_CASE("any network that runs a path is measured end to end") {
  fast b({.threads = 1});
  nn::supernet<fast, micro> net(b, {.seed = 0});
  nn::context<fast> ctx(b);
  path_only mine{net};
  const auto archs = nn::sample_architectures<micro>(2, 3);
  const auto times = nn::measure_latencies(b, mine, ctx, std::span<const space::architecture<micro>>(archs), quick());
  CHECK(times.size() == 2);
  for (double t : times) CHECK((t > 0 && std::isfinite(t)));
  CHECK(mine.calls == 2 * (quick().warmup + quick().repeats));
}

TEST_CASE("a profiled table saves and loads unchanged, and is refused for another space") {
  fast b({.threads = 1});
  nn::supernet<fast, micro> net(b, {.seed = 0});
  nn::context<fast> ctx(b);
  const auto t = nn::profile_latency_table(b, net, ctx, quick());
  const auto path = temp_file("latency_table");
  io::save_latency_table(path, t);
  const auto u = io::load_latency_table(path, micro::name, nn::choice_name_table<micro>());
  CHECK(u.space == t.space);
  CHECK(u.choices == t.choices);
  CHECK(u.model.fixed == t.model.fixed);
  CHECK(u.model.per_layer == t.model.per_layer);
  CHECK(u.model.unit == t.model.unit);
  CHECK(u.provenance.device == t.provenance.device);
  CHECK(u.provenance.backend == t.provenance.backend);
  CHECK(u.provenance.batch == t.provenance.batch);
  CHECK(u.provenance.threads == t.provenance.threads);
  CHECK(u.provenance.date == t.provenance.date);
  CHECK(u.provenance.library_version == t.provenance.library_version);
  CHECK(u.provenance.repeats == t.provenance.repeats);
  CHECK(u.provenance.warmup == t.provenance.warmup);
  CHECK_THROWS_WITH_AS(io::load_latency_table(path, presets::fmnist::name, nn::choice_name_table<presets::fmnist>()),
                       doctest::Contains("expected 'fmnist'"), std::runtime_error);
  std::filesystem::remove(path);
}

TEST_CASE_TEMPLATE("end-to-end latencies are positive and finite, one per architecture", B, naive, fast) {
  B b;
  nn::supernet<B, micro> net(b, {.seed = 0});
  nn::context<B> ctx(b);
  const std::vector<space::architecture<micro>> archs{{0, 0, 0, 0}, {3, 4, 3, 4}, {1, 2, 0, 4}};
  const auto ms = nn::measure_latencies(b, net, ctx, std::span<const space::architecture<micro>>(archs), quick());
  REQUIRE(ms.size() == archs.size());
  for (double v : ms) {
    CHECK(std::isfinite(v));
    CHECK(v > 0.0);
  }
  const double one = nn::measure_latency(b, net, ctx, archs[1], quick());
  CHECK(std::isfinite(one));
  CHECK(one > 0.0);
}

TEST_CASE_TEMPLATE("a joint profile gives the per-op table and one end-to-end time per architecture", B, naive,
                   fast) {
  B b;
  nn::supernet<B, micro> net(b, {.seed = 0});
  nn::context<B> ctx(b);
  const std::vector<space::architecture<micro>> archs{{0, 4, 0, 4}, {3, 3, 3, 3}};
  const auto p = nn::profile_latency(b, net, ctx, std::span<const space::architecture<micro>>(archs), quick());
  CHECK(p.table.space == "fmnist_micro");
  REQUIRE(p.table.model.per_layer.size() == micro::num_layers);
  for (std::size_t l = 0; l < micro::num_layers; ++l) CHECK(p.table.model.per_layer[l].size() == micro::num_choices[l]);
  REQUIRE(p.end_to_end.size() == archs.size());
  for (double v : p.end_to_end) {
    CHECK(std::isfinite(v));
    CHECK(v > 0.0);
  }
  CHECK(nn::profile_latency(b, net, ctx, std::span<const space::architecture<micro>>{}, quick()).end_to_end.empty());
}

TEST_CASE("a calibrated table is built in one measurement and records its sample") {
  naive b;
  nn::supernet<naive, micro> net(b, {.seed = 0});
  nn::context<naive> ctx(b);
  const auto t = nn::profile_calibrated_latency_table(b, net, ctx, {.architectures = 5, .seed = 4}, quick());
  const auto& cal = t.calibration;
  CHECK(cal.architectures.size() == 5);
  CHECK(cal.measured.size() == 5);
  CHECK(cal.fit.a > 0.0);
  const auto expected = cost::apply_calibration(cal.fit, cal.uncalibrated);
  CHECK(t.table.model.fixed == doctest::Approx(expected.fixed));
  for (std::size_t l = 0; l < micro::num_layers; ++l)
    for (std::size_t c = 0; c < micro::num_choices[l]; ++c)
      CHECK(t.table.model.per_layer[l][c] == doctest::Approx(expected.per_layer[l][c]));
  // The sample is the one sample_architectures draws from the seed, so a check can leave it out.
  const auto drawn = nn::sample_architectures<micro>(5, 4);
  for (std::size_t i = 0; i < drawn.size(); ++i)
    CHECK(cal.architectures[i] == std::vector<int>(drawn[i].begin(), drawn[i].end()));
  CHECK_NOTHROW(t.table.validate());

  auto table = t.table;
  const std::vector<double> two{1.0, 2.0};
  CHECK_THROWS_WITH_AS(
      nn::apply_latency_calibration<micro>(table, std::span<const space::architecture<micro>>(drawn), two),
      doctest::Contains("5 architectures but 2 measurements"), std::invalid_argument);
}

TEST_CASE("bad timing options and architectures are refused") {
  naive b;
  nn::supernet<naive, micro> net(b, {.seed = 0});
  nn::context<naive> ctx(b);
  auto o = quick();
  o.batch = 0;
  CHECK_THROWS_WITH_AS(nn::profile_latency_table(b, net, ctx, o), doctest::Contains("batch"), std::invalid_argument);
  o = quick();
  o.repeats = 0;
  CHECK_THROWS_WITH_AS(nn::profile_latency_table(b, net, ctx, o), doctest::Contains("repeats"),
                       std::invalid_argument);
  o = quick();
  o.retries = -1;
  CHECK_THROWS_WITH_AS(nn::profile_latency_table(b, net, ctx, o), doctest::Contains("retries"),
                       std::invalid_argument);
  o = quick();
  o.warmup = -1;
  CHECK_THROWS_WITH_AS(nn::measure_latency(b, net, ctx, space::architecture<micro>{}, o), doctest::Contains("warmup"),
                       std::invalid_argument);
  CHECK_THROWS_AS(nn::measure_latency(b, net, ctx, space::architecture<micro>{0, 9, 0, 0}, quick()),
                  space::arch_error);
}

TEST_CASE("the affine calibration fit is least squares, and keeps the fixed part non-negative") {
  // measured = 2 · predicted + 1 exactly.
  const std::vector<double> p{1.0, 2.0, 3.0, 4.0}, m{3.0, 5.0, 7.0, 9.0};
  const auto c = nn::fit_nonnegative_calibration(p, m, 0.5);
  CHECK(c.line.a == doctest::Approx(2.0));
  CHECK(c.line.b == doctest::Approx(1.0));
  CHECK_FALSE(c.on_boundary);

  // measured = predicted − 2: the free line would take the fixed part 0.5 to −1.5, so the fit
  // moves to the boundary a · 0.5 + b = 0.
  const std::vector<double> m2{1.0, 2.0, 3.0, 4.0}, p2{3.0, 4.0, 5.0, 6.0};
  const auto d = nn::fit_nonnegative_calibration(p2, m2, 0.5);
  CHECK(d.on_boundary);
  CHECK(d.line.a * 0.5 + d.line.b == doctest::Approx(0.0));
  // On that boundary, a = Σ m (p − f) / Σ (p − f)².
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < p2.size(); ++i) {
    num += m2[i] * (p2[i] - 0.5);
    den += (p2[i] - 0.5) * (p2[i] - 0.5);
  }
  CHECK(d.line.a == doctest::Approx(num / den));
}

TEST_CASE("the scale fit minimises the squared relative errors") {
  // Every prediction half the measurement: a = 2 exactly.
  const std::vector<double> p{1.0, 3.0, 5.0}, m{2.0, 6.0, 10.0};
  const auto c = nn::fit_relative_scale(p, m);
  CHECK(c.a == doctest::Approx(2.0));
  CHECK(c.b == 0.0);
  // The minimiser of Σ (a q − 1)² with q = p / m is Σ q / Σ q².
  const std::vector<double> p2{1.0, 2.0, 4.0}, m2{1.5, 2.0, 3.0};
  double sq = 0.0, sqq = 0.0;
  for (std::size_t i = 0; i < p2.size(); ++i) {
    sq += p2[i] / m2[i];
    sqq += (p2[i] / m2[i]) * (p2[i] / m2[i]);
  }
  CHECK(nn::fit_relative_scale(p2, m2).a == doctest::Approx(sq / sqq));
}

TEST_CASE("the calibration form that predicts left-out architectures best is chosen") {
  using arch = space::architecture<micro>;
  cost::latency_table t;
  t.space = "fmnist_micro";
  t.choices = nn::choice_name_table<micro>();
  t.model.fixed = 1.0;
  for (std::size_t l = 0; l < micro::num_layers; ++l) {
    t.model.per_layer.emplace_back();
    for (std::size_t c = 0; c < micro::num_choices[l]; ++c) t.model.per_layer[l].push_back(0.5 + 0.25 * double(c));
  }
  const auto archs = nn::sample_architectures<micro>(12, 8);
  std::vector<double> sums;
  for (const auto& a : archs) sums.push_back(t.model.predict(a));

  // The table is right: nothing to correct.
  auto exact = t;
  const auto none = nn::apply_latency_calibration<micro>(exact, std::span<const arch>(archs), sums);
  CHECK(none.method == "none");
  CHECK(none.candidates.size() == 3);
  CHECK(exact.model.per_layer == t.model.per_layer);

  // Everything 30 % slower than the table says: a scale.
  std::vector<double> slower;
  for (double v : sums) slower.push_back(1.3 * v);
  auto scaled = t;
  const auto sc = nn::apply_latency_calibration<micro>(scaled, std::span<const arch>(archs), slower);
  CHECK(sc.method == "scale");
  CHECK(sc.fit.a == doctest::Approx(1.3));
  CHECK(scaled.model.fixed == doctest::Approx(1.3));

  // A constant 2 ms on top and 10 % more per op: a line.
  std::vector<double> shifted;
  for (double v : sums) shifted.push_back(1.1 * v + 2.0);
  auto lined = t;
  const auto af = nn::apply_latency_calibration<micro>(lined, std::span<const arch>(archs), shifted);
  CHECK(af.method == "affine");
  CHECK(af.fit.a == doctest::Approx(1.1));
  CHECK(af.fit.b == doctest::Approx(2.0));
  CHECK(lined.model.fixed == doctest::Approx(1.1 * 1.0 + 2.0));
  CHECK(af.after.rmspe == doctest::Approx(0.0).epsilon(1e-9));
}

TEST_CASE("calibration replaces the table's model by the fitted one and records how") {
  naive b;
  nn::supernet<naive, micro> net(b, {.seed = 0});
  nn::context<naive> ctx(b);
  auto t = nn::profile_latency_table(b, net, ctx, quick());
  const auto original = t.model;
  const auto cal = nn::calibrate_latency_table(b, net, ctx, t, {.architectures = 6, .seed = 3}, quick());
  CHECK(cal.architectures.size() == 6);
  CHECK(cal.measured.size() == 6);
  CHECK(cal.before.count == 6);
  CHECK(cal.after.count == 6);
  CHECK(!cal.method.empty());
  CHECK(cal.fit.a > 0.0);
  CHECK(cal.candidates.size() >= 2);
  CHECK(cal.uncalibrated.per_layer == original.per_layer);
  CHECK(cal.uncalibrated.fixed == original.fixed);
  const auto expected = cost::apply_calibration(cal.fit, original);
  CHECK(t.model.fixed == doctest::Approx(expected.fixed));
  CHECK(t.model.fixed >= 0.0);
  for (std::size_t l = 0; l < micro::num_layers; ++l)
    for (std::size_t c = 0; c < micro::num_choices[l]; ++c)
      CHECK(t.model.per_layer[l][c] == doctest::Approx(expected.per_layer[l][c]));
  CHECK_NOTHROW(t.validate());

  auto other = t;
  other.space = "fmnist";
  CHECK_THROWS_AS(nn::calibrate_latency_table(b, net, ctx, other, {.architectures = 6, .seed = 3}, quick()),
                  std::invalid_argument);
  CHECK_THROWS_WITH_AS(nn::calibrate_latency_table(b, net, ctx, t, {.architectures = 2, .seed = 3}, quick()),
                       doctest::Contains("at least 3"), std::invalid_argument);
}

TEST_CASE("sampled architectures are reproducible and leave the excluded ones out") {
  const auto a = nn::sample_architectures<micro>(20, 5);
  CHECK(a == nn::sample_architectures<micro>(20, 5));
  for (const auto& arch : a) CHECK(space::is_valid<micro>(arch));

  // Exclude all 400 architectures but one: every draw is that one.
  std::vector<space::architecture<micro>> all_but_one;
  const space::architecture<micro> kept{1, 2, 3, 4};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j)
      for (int k = 0; k < 4; ++k)
        for (int m = 0; m < 5; ++m)
          if (space::architecture<micro>{i, j, k, m} != kept) all_but_one.push_back({i, j, k, m});
  const auto rest = nn::sample_architectures<micro>(10, 5, std::span<const space::architecture<micro>>(all_but_one));
  REQUIRE(rest.size() == 10);
  for (const auto& arch : rest) CHECK(arch == kept);

  all_but_one.push_back(kept);
  CHECK_THROWS_WITH_AS(nn::sample_architectures<micro>(1, 5, std::span<const space::architecture<micro>>(all_but_one)),
                       doctest::Contains("excluded"), std::invalid_argument);
}
