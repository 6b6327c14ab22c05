// The roofline latency model and the latency table's validation, calibration and space check.
#include <doctest/doctest.h>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/cost/roofline.hpp>

#include <vector>

using namespace pcnas::cost;

namespace {
// A device as a type with static members: the roofline accepts it like the runtime struct.
struct toy_device {
  static constexpr double peak_flops = 2e9;            // 1e9 MAC/s
  static constexpr double bandwidth_bytes_per_s = 1e9;
  static constexpr double per_op_overhead_s = 1e-6;
};
}  // namespace

TEST_CASE("roofline: compute-bound, memory-bound and overhead") {
  const toy_device d;
  // 1e6 MACs = 2e6 FLOP → 1 ms of compute; 1e5 bytes → 0.1 ms of memory; two kernels.
  CHECK(roofline_seconds(d, {.macs = 1e6, .bytes = 1e5, .ops = 2}) == doctest::Approx(1e-3 + 2e-6));
  // Memory-bound: 1e6 bytes → 1 ms beats 0.2 ms of compute.
  CHECK(roofline_seconds(d, {.macs = 1e5, .bytes = 1e6, .ops = 1}) == doctest::Approx(1e-3 + 1e-6));
  const auto m = roofline_latency(d, {{{.macs = 1e6, .bytes = 0, .ops = 1}, {.macs = 0, .bytes = 0, .ops = 0}},
                                      {{.macs = 0, .bytes = 2e6, .ops = 3}}},
                                  {.macs = 5e5, .bytes = 0, .ops = 1});
  CHECK(m.unit == "ms");
  CHECK(m.fixed == doctest::Approx(0.501));
  CHECK(m.per_layer[0][0] == doctest::Approx(1.001));
  CHECK(m.per_layer[0][1] == doctest::Approx(0.0));  // a skip costs nothing
  CHECK(m.per_layer[1][0] == doctest::Approx(2.003));
  CHECK(m.predict(std::vector<int>{1, 0}) == doctest::Approx(2.504));
  // The result drives a constraint like any measured table.
  const constraint k(m, {.limit = 3.0});
  CHECK(k.count_feasible() == count128{1});
  CHECK_THROWS_AS(roofline_latency(d, {{{.macs = -1.0, .bytes = 0, .ops = 1}}}), std::invalid_argument);
}

TEST_CASE("roofline: the device presets are the stated spec numbers") {
  CHECK(devices::h200_fp32.peak_flops == 67e12);
  CHECK(devices::h200_fp32.bandwidth_bytes_per_s == 4.8e12);
  CHECK(devices::cpu_2core_avx2.peak_flops == 150e9);
  CHECK(devices::cpu_2core_avx2.bandwidth_bytes_per_s == 36e9);
  // 300 M MACs (MobileNetV2) at 150 GFLOP/s: 4 ms of compute, plus one overhead.
  CHECK(roofline_seconds(devices::cpu_2core_avx2, {.macs = 300e6, .bytes = 0, .ops = 1}) ==
        doctest::Approx(4e-3 + 1e-6));
}

TEST_CASE("latency table: space identity check names the first differing layer") {
  latency_table t;
  t.space = "fmnist_micro";
  t.choices = {{"k3e1", "k3e3"}, {"k3e1", "zero"}};
  t.model.per_layer = {{0.1, 0.2}, {0.3, 0.0}};
  t.validate();
  check_same_space(t, "fmnist_micro", {{"k3e1", "k3e3"}, {"k3e1", "zero"}});
  CHECK_THROWS_WITH_AS(check_same_space(t, "fmnist", t.choices),
                       doctest::Contains("is for space 'fmnist_micro', expected 'fmnist'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(check_same_space(t, "fmnist_micro", {{"k3e1", "k3e3"}, {"k3e1", "k5e6"}}),
                       doctest::Contains("layer 1 has choices [k3e1 zero], expected [k3e1 k5e6]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(check_same_space(t, "fmnist_micro", {{"k3e1", "k3e3"}}),
                       doctest::Contains("has 2 layers, expected 1"), std::invalid_argument);
  auto bad = t;
  bad.model.per_layer[1][0] = -0.5;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("layer 1 choice 'k3e1' must have a finite non-negative time"),
                       std::invalid_argument);
  bad = t;
  bad.choices[0].pop_back();
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("layer 0 has 1 choice names but 2 times"),
                       std::invalid_argument);
}

TEST_CASE("prediction summary and linear calibration") {
  const std::vector<double> measured{10, 20, 40, 50};
  const std::vector<double> predicted{10.4, 19, 44.8, 50};  // +4 %, −5 %, +12 %, 0 %
  const auto s = summarize_predictions(predicted, measured);
  CHECK(s.count == 4);
  CHECK(s.within_5 == doctest::Approx(0.75));
  CHECK(s.within_10 == doctest::Approx(0.75));
  CHECK(s.mean_bias == doctest::Approx((0.04 - 0.05 + 0.12 + 0.0) / 4));
  CHECK(s.rmspe == doctest::Approx(std::sqrt((0.0016 + 0.0025 + 0.0144) / 4)));

  // Exactly linear data recover the line.
  const std::vector<double> p{1, 2, 3, 4}, m{2.5, 4.5, 6.5, 8.5};
  const auto c = fit_calibration(p, m);
  CHECK(c.a == doctest::Approx(2.0));
  CHECK(c.b == doctest::Approx(0.5));
  CHECK(apply_calibration(c, 10.0) == doctest::Approx(20.5));
  const additive_cost_model model{.name = "latency", .unit = "ms", .fixed = 1.0, .per_layer = {{1.0, 2.0}, {0.5}}};
  const auto calibrated = apply_calibration(c, model);
  const std::vector<int> arch{1, 0};
  CHECK(calibrated.predict(arch) == doctest::Approx(apply_calibration(c, model.predict(arch))));

  CHECK_THROWS_WITH_AS(fit_calibration(std::vector<double>{1, 1}, std::vector<double>{2, 3}),
                       doctest::Contains("all predictions are equal"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(summarize_predictions(std::vector<double>{1}, std::vector<double>{0}),
                       doctest::Contains("finite positive measurement"), std::invalid_argument);
}

TEST_CASE("the speed ratio is the median of now / then over the references") {
  // Three references slowed down by 20 %, one by 50 % (an outlier the median ignores).
  const std::vector<double> then{1.0, 2.0, 4.0, 5.0}, now{1.2, 2.4, 6.0, 6.0};
  CHECK(speed_ratio(then, now) == doctest::Approx(1.2));
  CHECK(speed_ratio(std::vector<double>{2.0}, std::vector<double>{1.0}) == doctest::Approx(0.5));
  CHECK_THROWS_WITH_AS(speed_ratio(std::vector<double>{1.0, 2.0}, std::vector<double>{1.0}),
                       doctest::Contains("2 predictions but 1 measurements"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(speed_ratio(std::vector<double>{0.0}, std::vector<double>{1.0}),
                       doctest::Contains("reference 0 needs a positive time then"), std::invalid_argument);
  CHECK_THROWS_AS(speed_ratio(std::vector<double>{}, std::vector<double>{}), std::invalid_argument);
}
