// The same PC-NAS search three ways: the fmnist_micro space on Fashion-MNIST through pcnas's
// supernet on the Eigen backend and on the LibTorch backend, and through a supernet written in
// torch::nn (module_supernet.hpp), with the same seeds, data, budget and threads. Prints, per
// seed and route, the architecture found, its held-out accuracy (shared weights, what the search
// ranked by), its test accuracy (shared weights, recalibrated) and the search's wall time; then
// the means and median times, and whether the two backends differ by more than noise. The torch::nn
// supernet has its own initialisation, so it is compared on accuracy only loosely.
//
// Usage: search_fmnist [steps=300] [seeds=5] [threads=1]
// (One thread by default: on a machine whose cores are busy with other work, OpenMP threads that
// spin-wait between parallel regions make both backends several times slower, not faster.)
#include <pcnas/backend/eigen.hpp>
#include <pcnas/backend/libtorch.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/eval/paired_test.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/space/presets.hpp>

#include "module_supernet.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using space_t = pcnas::presets::fmnist_micro;

struct outcome {
  std::string arch;
  double held_out = 0, test = 0, seconds = 0;
};

// The search on any supernet: `make` builds it (inside the timed span, as building is part of
// what each route costs).
template <class Make>
outcome search_once(Make make, const pcnas::data::dataset& test, std::size_t steps, std::uint64_t seed) {
  using namespace pcnas;
  const auto start = std::chrono::steady_clock::now();
  auto net = make();
  // The limit of examples/02_search_api.cpp: 60 % of the way from the cheapest to the dearest, in MACs.
  const auto macs = cost::analytic_model<space_t>(cost::analytic_measure::macs);
  const cost::constraint within(macs, {.limit = macs.min_total() + 0.6 * (macs.max_total() - macs.min_total())});
  const auto result =
      search::pc_nas_search(net, within, {.pool_size = 3, .completions = 2, .total_steps = steps, .seed = seed});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  net.recalibrate(result.best_arch);
  const double test_accuracy = net.evaluate_on(result.best_arch, test);
  return {space::to_string<space_t>(space::arch_from_indices<space_t>(result.best_arch)), result.best_accuracy,
          test_accuracy, seconds};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pcnas;
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300;
  const std::size_t seeds = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 5;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  if (steps == 0 || seeds == 0 || threads <= 0) {
    std::fprintf(stderr, "usage: search_fmnist [steps > 0] [seeds > 0] [threads > 0]\n");
    return 2;
  }

  // The training set minus 5,000 held-out images that the search ranks with; the test set only
  // for the final report.
  const auto split = data::split_train_val(data::load_fashion_mnist(data::split::train), 5000, /*seed=*/0);
  const auto test = data::load_fashion_mnist(data::split::test);

  backend::eigen::backend eigen({.threads = threads});
  // ATen's CPU threads are a process-wide setting (by default, one per physical core).
  at::set_num_threads(threads);
  backend::libtorch::backend torch_cpu;
  std::printf("fmnist_micro, %zu steps, %zu seeds\n  %s\n  %s\n\n", steps, seeds, eigen.name().c_str(),
              torch_cpu.name().c_str());

  using pcnas_torch_example::module_supernet;
  std::vector<outcome> by_eigen, by_torch, by_modules;
  std::printf("%-9s %4s  %-40s %9s %9s %8s\n", "backend", "seed", "architecture", "held-out", "test", "seconds");
  auto row = [](const char* name, std::uint64_t seed, const outcome& o) {
    std::printf("%-9s %4llu  %-40s %8.2f%% %8.2f%% %8.1f\n", name, static_cast<unsigned long long>(seed),
                o.arch.c_str(), 100 * o.held_out, 100 * o.test, o.seconds);
    std::fflush(stdout);
  };
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const nn::trainer_options trainer{.validation_images = 1000, .seed = seed};
    by_eigen.push_back(search_once(
        [&] { return nn::supernet_trainer<backend::eigen::backend, space_t>(eigen, split.train, split.val, trainer); },
        test, steps, seed));
    row("eigen", seed, by_eigen.back());
    by_torch.push_back(search_once(
        [&] { return nn::supernet_trainer<backend::libtorch::backend, space_t>(torch_cpu, split.train, split.val, trainer); },
        test, steps, seed));
    row("libtorch", seed, by_torch.back());
    by_modules.push_back(search_once(
        [&] { return module_supernet<space_t>(split.train, split.val, {.validation_images = 1000, .seed = seed}); },
        test, steps, seed));
    row("torch::nn", seed, by_modules.back());
  }

  auto column = [](const std::vector<outcome>& v, double outcome::*field) {
    std::vector<double> out;
    for (const auto& o : v) out.push_back(o.*field);
    return out;
  };
  std::printf("\n%-9s %22s %22s %16s\n", "backend", "held-out mean (sd)", "test mean (sd)", "median seconds");
  for (const auto& [name, v] : {std::pair{"eigen", &by_eigen}, std::pair{"libtorch", &by_torch}, std::pair{"torch::nn", &by_modules}})
    std::printf("%-9s %14.2f%% (%4.2f) %14.2f%% (%4.2f) %16.1f\n", name, 100 * mean(column(*v, &outcome::held_out)),
                100 * stddev(column(*v, &outcome::held_out)), 100 * mean(column(*v, &outcome::test)),
                100 * stddev(column(*v, &outcome::test)), median(column(*v, &outcome::seconds)));

  // The backends round differently, so the same seed need not find the same architecture; what
  // must hold is that the paired difference is indistinguishable from zero: its 95 % t-interval
  // over the seeds contains zero (and, distribution-free, the exact signed-rank test agrees).
  std::vector<double> differences;
  for (std::size_t i = 0; i < seeds; ++i) differences.push_back(100 * (by_torch[i].test - by_eigen[i].test));
  const double diff = mean(differences);
  std::printf("\ntest accuracy, libtorch - eigen, paired by seed: %+.2f points", diff);
  if (seeds < 2) {
    std::printf(" (one seed: no estimate of the noise)\n");
    return 0;
  }
  // Student's t quantile, 97.5 %, for n - 1 degrees of freedom (1.96 in the limit).
  constexpr double t975[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228};
  const std::size_t df = seeds - 1;
  const double t = df <= 10 ? t975[df - 1] : df <= 30 ? 2.2 : 1.96;
  const double half = t * stddev(differences) / std::sqrt(static_cast<double>(seeds));
  const auto by_rank = eval::wilcoxon_signed_rank(column(by_torch, &outcome::test), column(by_eigen, &outcome::test));
  std::printf(", 95 %% interval [%+.2f, %+.2f]; signed-rank p = %.3f; seed-to-seed sd %.2f (eigen), %.2f (libtorch): %s\n",
              diff - half, diff + half, by_rank.p_two_sided, 100 * stddev(column(by_eigen, &outcome::test)),
              100 * stddev(column(by_torch, &outcome::test)),
              std::abs(diff) <= half ? "within noise" : "NOT within noise: the backends differ");
}
