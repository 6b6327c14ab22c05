// long_retrain: one fmnist architecture retrained from scratch for many epochs, with the
// validation and test accuracy after every epoch (the learning curve) appended to DIR/curve.jsonl
// and the whole training state checkpointed after every epoch, so that a run of hours survives
// interruptions: the same command continues where the last checkpoint left off.
//
//   long_retrain --arch "k3e6 k3e6 k7e6 k7e3 zero k5e3 zero zero" --epochs 60 --seed 1 --out DIR
//
// The recipe is `pcnas train`'s (batch 128, SGD with Nesterov momentum 0.9, weight decay 4e-5,
// label smoothing 0.1, crops with padding 2 and flips, cosine from 0.1 over all the epochs, 5,000
// images held out with the seed as split seed); only the number of epochs differs. The test
// accuracy is recorded for the curve and never used to choose anything.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/space/presets.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace {

using space = pcnas::presets::fmnist;
using backend_t = pcnas::backend::eigen::backend;

struct options {
  std::string arch;
  int epochs = 60;
  std::uint64_t seed = 0;
  int threads = 1;
  std::string out;
  std::string data;
};

int run(const options& o) {
  namespace fs = std::filesystem;
  const auto arch = pcnas::space::parse_arch<space>(o.arch);
  const fs::path out(o.out), checkpoint = out / "checkpoint.bin", curve = out / "curve.jsonl", meta = out / "run.json";
  const nlohmann::json run_json = {{"space", std::string(space::name)}, {"arch", pcnas::space::to_string<space>(arch)},
                                   {"epochs", o.epochs},                {"seed", o.seed},
                                   {"batch", 128},                      {"base_lr", 0.1},
                                   {"held_out", 5000}};
  fs::create_directories(out);
  if (fs::exists(meta)) {
    const auto previous = nlohmann::json::parse(pcnas::io::read_file(meta));
    if (previous != run_json)
      throw std::runtime_error(out.string() + " holds another run (" + previous.dump() + "); choose another --out");
  } else {
    pcnas::io::write_file_atomically(meta, run_json.dump(2) + "\n");
  }

  const fs::path root = o.data.empty() ? pcnas::data::default_data_dir() : fs::path(o.data);
  auto parts = pcnas::data::split_train_val(pcnas::data::load_fashion_mnist(root, pcnas::data::split::train), 5000, o.seed);
  const auto test = pcnas::data::load_fashion_mnist(root, pcnas::data::split::test);
  backend_t b({.threads = o.threads});
  pcnas::nn::supernet_trainer<backend_t, space> net(
      b, parts.train, parts.val,
      {.batch_size = 128, .validation_images = 5000, .seed = o.seed, .augment = {.crop_padding = 2, .horizontal_flip = true}});
  const std::size_t per_epoch = net.batches_per_epoch(), total = per_epoch * static_cast<std::size_t>(o.epochs);
  const pcnas::search::cosine_schedule lr{.base_lr = 0.1, .total_steps = total};
  if (fs::exists(checkpoint)) {
    std::ifstream in(checkpoint, std::ios::binary);
    net.load(in);
  }
  std::size_t step = net.steps();
  if (step % per_epoch != 0) throw std::runtime_error(checkpoint.string() + " is not at the end of an epoch");
  std::fprintf(stderr, "%s: %s, %d epochs of %zu steps, starting at epoch %zu\n", out.c_str(),
               pcnas::space::to_string<space>(arch).c_str(), o.epochs, per_epoch, step / per_epoch + 1);

  pcnas::search::progress_printer progress;
  progress.begin("retrain", total, step);
  auto t0 = std::chrono::steady_clock::now();
  double loss_sum = 0.0;
  for (; step < total; ++step) {
    const double loss = net.train_step(arch, lr(step));
    loss_sum += loss;
    char detail[48];
    std::snprintf(detail, sizeof detail, "loss %.3f", loss);
    progress.update(step + 1, detail);
    if ((step + 1) % per_epoch != 0) continue;
    const std::size_t epoch = (step + 1) / per_epoch;
    const double val = net.evaluate(arch);
    const auto t = net.evaluate_stats(arch, test, 0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The curve line first, then the checkpoint: a kill between the two repeats that epoch on
    // resume (its line then appears twice, the later one counts), never skips one.
    std::ofstream(curve, std::ios::app) << nlohmann::json{{"epoch", epoch},
                                                          {"train_loss", loss_sum / static_cast<double>(per_epoch)},
                                                          {"val_accuracy", val},
                                                          {"test_accuracy", t.accuracy()},
                                                          {"seconds", seconds},
                                                          {"threads", b.threads()}}
                                               .dump()
                                        << "\n";
    std::ostringstream state;
    net.save(state);
    pcnas::io::write_file_atomically(checkpoint, state.str());
    char line[160];
    std::snprintf(line, sizeof line, "epoch %zu/%d: loss %.4f, validation %.2f %%, test %.2f %%, %.0f s", epoch,
                  o.epochs, loss_sum / static_cast<double>(per_epoch), 100 * val, 100 * t.accuracy(), seconds);
    progress.message(line);
    loss_sum = 0.0;
    t0 = std::chrono::steady_clock::now();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"Retrain one fmnist architecture for many epochs with a checkpoint and a curve line per epoch; "
               "run the same command again to continue after an interruption."};
  app.add_option("--arch", o.arch, "Architecture text, one token per layer")->required();
  app.add_option("--epochs", o.epochs, "Epochs (the cosine schedule spans them all)")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--seed", o.seed, "Seed of the split, the weights, the order and the augmentation")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--out", o.out, "Directory for run.json, checkpoint.bin and curve.jsonl")->required();
  app.add_option("--data", o.data, "Fashion-MNIST directory");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "long_retrain: %s\n", e.what());
    return 1;
  }
}
