// The LibTorch backend through the conformance kit (float, and double, where the kit's tolerances
// are tight enough to catch a wrong formula that float would hide).
#include <pcnas/backend/libtorch.hpp>  // first: the header must compile on its own
#include <pcnas/testing/conformance.hpp>

PCNAS_BACKEND_CONFORMANCE(pcnas::backend::libtorch::backend)
PCNAS_BACKEND_CONFORMANCE(pcnas::backend::libtorch::basic_backend<double>)

TEST_CASE("the LibTorch backend runs where it is asked to, or says why it cannot") {
  const pcnas::backend::libtorch::options gpu{.device = c10::Device(c10::kCUDA, 0)};
  if (at::hasCUDA()) {
    pcnas::backend::libtorch::backend b(gpu);
    CHECK(b.allocate(4).device().is_cuda());
  } else {
    CHECK_THROWS_WITH_AS(pcnas::backend::libtorch::backend{gpu}, doctest::Contains("without CUDA"), std::invalid_argument);
  }
  pcnas::backend::libtorch::backend cpu;
  CHECK(cpu.allocate(4).device().is_cpu());
  auto t = cpu.allocate(3);
  CHECK_THROWS_AS(cpu.fill(4, 1.0f, t), std::out_of_range);  // a tensor smaller than the call needs
}

// ---------------------------------------------------------------------------------------------
// The other route: a supernet written in torch::nn (examples/torch_backend/module_supernet.hpp),
// searched by the generic PC-NAS.
// ---------------------------------------------------------------------------------------------

#include <module_supernet.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/pc_nas.hpp>

#include <sstream>
#include <vector>

namespace {

using pcnas::testing::conformance_space;
using torch_net = pcnas_torch_example::module_supernet<conformance_space>;
static_assert(pcnas::search::check_supernet<torch_net>());

const pcnas_torch_example::module_supernet_options tiny{
    .batch_size = 16, .eval_batch_size = 32, .recalibration_batches = 2, .validation_images = 64, .seed = 5};

}  // namespace

TEST_CASE("a supernet written in torch::nn: a short PC-NAS search learns and returns a feasible architecture") {
  const auto train = pcnas::testing::synthetic_images(256, 3);
  const auto val = pcnas::testing::synthetic_images(64, 4);
  torch_net net(train, val, tiny);
  const auto macs = pcnas::cost::analytic_model<conformance_space>(pcnas::cost::analytic_measure::macs);
  const double limit = macs.min_total() + 0.5 * (macs.max_total() - macs.min_total());
  const pcnas::cost::constraint within(macs, {.limit = limit});
  const auto result = pcnas::search::pc_nas_search(net, within, {.pool_size = 2, .completions = 2, .total_steps = 120, .seed = 9});
  CHECK(result.steps_done == 120);
  REQUIRE(result.best_arch.size() == conformance_space::num_layers);
  CHECK(result.predicted_cost <= limit);
  // Three classes: a third is chance. The labels depend on two pixels, which 120 steps learn.
  CHECK(result.best_accuracy > 0.5);
  // evaluate() is deterministic for a given state, as the search assumes.
  net.recalibrate(result.best_arch);
  CHECK(net.evaluate(result.best_arch) == doctest::Approx(result.best_accuracy).epsilon(1e-12));
}

TEST_CASE("a supernet written in torch::nn: save and load restore weights, momenta and the data stream") {
  const auto train = pcnas::testing::synthetic_images(256, 3);
  const auto val = pcnas::testing::synthetic_images(64, 4);
  const std::vector<int> arch{1, 2, 0};
  torch_net net(train, val, tiny);
  for (int i = 0; i < 3; ++i) net.train_step(arch, 0.1);
  std::stringstream state;
  net.save(state);
  const double next = net.train_step(arch, 0.1);
  const double after = net.train_step(arch, 0.1);

  // The same configuration (the seed fixes the data order), but another state until load():
  // steps on another path move its weights, momenta and data stream.
  torch_net resumed(train, val, tiny);
  for (int i = 0; i < 5; ++i) resumed.train_step(std::vector<int>{0, 1, 1}, 0.2);
  resumed.load(state);
  CHECK(resumed.train_step(arch, 0.1) == doctest::Approx(next).epsilon(1e-6));
  CHECK(resumed.train_step(arch, 0.1) == doctest::Approx(after).epsilon(1e-6));
  CHECK_THROWS_AS(resumed.train_step(std::vector<int>{0, 3, 0}, 0.1), std::out_of_range);
}
