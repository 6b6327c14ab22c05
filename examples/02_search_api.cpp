// PC-NAS from C++ in a few lines: the fmnist_micro space on Fashion-MNIST, the Eigen backend,
// a MACs limit (no device needed), a small budget. Prints the pool as it converges and the
// architecture found. Usage: 02_search_api [steps] (default 300; about a minute on 2 cores).
#include <pcnas/backend/eigen.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/space/presets.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  using namespace pcnas;
  using space_t = presets::fmnist_micro;
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300;

  // Data: the training set minus 5,000 held-out images that the search ranks with.
  const auto split = data::split_train_val(data::load_fashion_mnist(data::split::train), 5000, /*seed=*/0);

  // The supernet on the Eigen backend, bound to its data.
  backend::eigen::backend cpu({.threads = 2});
  nn::supernet_trainer<backend::eigen::backend, space_t> supernet(cpu, split.train, split.val,
                                                                  {.validation_images = 1000});

  // A hard limit: at most 60 % of the way from the cheapest to the dearest architecture, in MACs.
  const auto macs = cost::analytic_model<space_t>(cost::analytic_measure::macs);
  const double limit = macs.min_total() + 0.6 * (macs.max_total() - macs.min_total());
  const cost::constraint within(macs, {.limit = limit});

  // A callback is any object with some of the hooks; this one prints each pool.
  struct print_pool {
    void on_pool_update(const search::pool_info& p) {
      std::printf("layer %zu fixed, pool:", p.layer);
      for (const auto& m : p.pool) std::printf("  %.3f", m.potential);
      std::printf("\n");
    }
  };
  const auto result = search::pc_nas_search(supernet, within,
                                            {.pool_size = 3, .completions = 2, .total_steps = steps},
                                            print_pool{}, search::progress_callback{});

  const auto arch = space::arch_from_indices<space_t>(result.best_arch);
  std::printf("found %s: %.3f M MACs (limit %.3f), %.2f %% held-out accuracy with shared weights\n",
              space::to_string<space_t>(arch).c_str(), macs.predict(result.best_arch), limit,
              100 * result.best_accuracy);
}
