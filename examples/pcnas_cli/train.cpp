// `pcnas train`: trains one architecture from scratch on Fashion-MNIST, reports validation and
// test accuracy, writes the weights and a result.json.
#include "commands.hpp"
#include "common.hpp"
#include "output_dir.hpp"

#ifdef PCNAS_CLI_WITH_EIGEN
#include "training.hpp"
#endif

#include <cstdint>
#include <memory>
#include <optional>

namespace pcnas_cli {
namespace {

struct train_options {
  std::string space;
  std::string arch;
  int epochs = 15;
  int batch = 128;
  double lr = 0.1;
  std::uint64_t seed = 0;
  int threads = 0;
  std::size_t val = 5000;
  std::string data;
  std::string out;
  bool augment = true;
  bool json = false;
};

#ifdef PCNAS_CLI_WITH_EIGEN
template <class S>
int train(const train_options& o) {
  // Everything that can be refused is checked before the data are loaded and the work starts.
  const auto arch = parse_arch_arg<S>(o.arch);
  check_training_batch(o.batch);
  check_threads(o.threads);
  std::optional<output_lock> lock;
  if (!o.out.empty()) {
    check_writable_dir(o.out, "--out");
    lock.emplace(o.out, "--out");
  }
  const auto data = load_fmnist(o.data, o.val, o.seed);
  auto b = make_backend(o.threads);
  const stop_on_signals signals;
  const auto cost = pcnas::cost::arch_cost<S>(arch);
  std::fprintf(stderr, "%s: %.2f M MACs, %.3f M parameters\n", std::string(S::name).c_str(), cost.macs / 1e6,
               cost.params / 1e6);
  std::filesystem::path weights;
  if (!o.out.empty()) weights = std::filesystem::path(o.out) / "weights.bin";
  const auto r = train_from_scratch<S>(
      b, data, arch,
      {.epochs = o.epochs, .batch = o.batch, .lr = o.lr, .seed = o.seed, .augment = o.augment, .weights = weights});
  const nlohmann::json result = {{"space", std::string(S::name)},
                                 {"arch", pcnas::space::to_string<S>(arch)},
                                 {"epochs", o.epochs},
                                 {"batch", o.batch},
                                 {"learning_rate", o.lr},
                                 {"seed", o.seed},
                                 {"threads", b.threads()},
                                 {"backend", b.name()},
                                 {"augment", o.augment},
                                 {"val_accuracy", r.val_accuracy},
                                 {"test_accuracy", r.test_accuracy},
                                 {"test_loss", r.test_loss},
                                 {"seconds", r.seconds},
                                 {"train_images_per_s", r.images_per_s},
                                 {"macs", cost.macs},
                                 {"params", cost.params}};
  if (!o.out.empty()) save_json(std::filesystem::path(o.out) / "result.json", result);
  std::printf("%s: validation %.2f %%, test %.2f %% after %d epochs in %.0f s%s\n",
              pcnas::space::to_string<S>(arch).c_str(), 100 * r.val_accuracy, 100 * r.test_accuracy, o.epochs,
              r.seconds, o.out.empty() ? "" : (", written to " + o.out).c_str());
  if (o.json) std::printf("%s\n", result.dump().c_str());
  return 0;
}
#endif

}  // namespace

command add_train(CLI::App& app) {
  auto o = std::make_shared<train_options>();
  auto* cmd = app.add_subcommand("train", "Train one architecture from scratch on Fashion-MNIST and report "
                                          "its validation and test accuracy");
  cmd->add_option("space", o->space, "fmnist or fmnist_micro")->required();
  cmd->add_option("--arch", o->arch, arch_help)->required();
  cmd->add_option("--epochs", o->epochs, "Epochs over the training split")
      ->check(whole_number(1, 100000))
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch size (at least 2: batch norm normalises over the batch)")
      ->check(whole_number(2, 65536))
      ->capture_default_str();
  cmd->add_option("--lr", o->lr, "Base learning rate of the cosine schedule")
      ->check(real_number(0, 1e6, true))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the weights, the split, shuffling and augmentation")
      ->check(whole_number(0, UINT64_MAX))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(whole_number(0, 65536))->capture_default_str();
  cmd->add_option("--val", o->val, "Images held out of the training set for validation")
      ->check(whole_number(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--data", o->data, "Fashion-MNIST directory (default: $PCNAS_DATA_DIR, else "
                                     "/usr/share/datasets/fashion-mnist)");
  cmd->add_option("--out", o->out, "Directory for weights.bin and result.json");
  cmd->add_flag("!--no-augment", o->augment, "Turn off random crops (padding 2) and horizontal flips");
  cmd->add_flag("--json", o->json,
                "End the output with one JSON object (val_accuracy, test_accuracy, epochs, seconds, ...)");
  return {cmd, [o] {
#ifdef PCNAS_CLI_WITH_EIGEN
            return with_trainable_space(o->space, [&]<class S>(std::type_identity<S>) { return train<S>(*o); });
#else
            throw usage_error("this pcnas was built without Eigen: training is not available");
            return 1;
#endif
          }};
}

}  // namespace pcnas_cli
