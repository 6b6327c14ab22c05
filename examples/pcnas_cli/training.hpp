// Training one architecture from scratch (the `train` command, and the retraining step of
// `search`): cosine schedule, validation after every epoch, test accuracy at the end.
#pragma once

#include "common.hpp"

#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/schedule.hpp>

#include <sstream>

namespace pcnas_cli {

struct from_scratch_options {
  int epochs = 15;
  int batch = 128;
  double lr = 0.1;
  std::uint64_t seed = 0;
  bool augment = true;
  std::filesystem::path weights;  // where to write the trained state (empty: nowhere)
};

struct from_scratch_result {
  double val_accuracy = 0.0;
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  double seconds = 0.0;
  double images_per_s = 0.0;
};

template <class S>
from_scratch_result train_from_scratch(cpu_backend& b, const fmnist_data& data, const pcnas::space::architecture<S>& arch,
                                       const from_scratch_options& o) {
  if (o.epochs < 1) throw usage_error("--epochs must be at least 1");
  if (o.batch < 1) throw usage_error("--batch must be at least 1");
  if (!(o.lr > 0)) throw usage_error("--lr must be positive");
  pcnas::nn::trainer_options to{.batch_size = static_cast<std::size_t>(o.batch),
                                .validation_images = data.val.count,
                                .seed = o.seed};
  if (o.augment) to.augment = {.crop_padding = 2, .horizontal_flip = true};
  pcnas::nn::supernet_trainer<cpu_backend, S> trainer(b, data.train, data.val, to);

  const std::size_t per_epoch = trainer.batches_per_epoch();
  const std::size_t total = per_epoch * static_cast<std::size_t>(o.epochs);
  const pcnas::search::cosine_schedule lr{.base_lr = o.lr, .total_steps = total};
  std::fprintf(stderr, "training [%s] from scratch: %zu images (%zu held out, %zu test), %d epochs of %zu batches of %d, %s\n",
               pcnas::space::to_string<S>(arch).c_str(), data.train.count, data.val.count, data.test.count, o.epochs,
               per_epoch, o.batch, b.name().c_str());

  pcnas::search::progress_printer progress;
  const auto t0 = std::chrono::steady_clock::now();
  from_scratch_result r;
  progress.begin("train", total);
  for (std::size_t step = 0; step < total; ++step) {
    const double loss = trainer.train_step(arch, lr(step));
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.3f", loss);
    progress.update(step + 1, detail);
    if ((step + 1) % per_epoch == 0) {
      r.val_accuracy = trainer.evaluate(arch);
      char line[160];
      std::snprintf(line, sizeof line, "epoch %zu/%d: loss %.4f, validation accuracy %.2f %%, %.0f s",
                    (step + 1) / per_epoch, o.epochs, loss, 100 * r.val_accuracy, seconds_since(t0));
      progress.message(line);
    }
  }
  r.seconds = seconds_since(t0);
  r.images_per_s = static_cast<double>(total) * o.batch / r.seconds;
  const auto test = trainer.evaluate_stats(arch, data.test, 0);
  r.test_accuracy = test.accuracy();
  r.test_loss = test.mean_loss();
  if (!o.weights.empty()) {
    std::ostringstream state;
    trainer.save(state);
    pcnas::io::write_file_atomically(o.weights, state.str());
  }
  return r;
}

}  // namespace pcnas_cli
