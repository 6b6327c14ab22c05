// Training one architecture from scratch (the `train` command, and the retraining step of
// `search`): cosine schedule, validation after every epoch, test accuracy at the end.
#pragma once

#include "common.hpp"
#include "interrupt.hpp"

#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/schedule.hpp>

#include <cmath>
#include <sstream>

namespace pcnas_cli {

struct from_scratch_options {
  int epochs = 15;
  int batch = 128;
  double lr = 0.1;
  std::uint64_t seed = 0;
  bool augment = true;
  std::filesystem::path weights;  // where to write the trained state (empty: nowhere)
  // Written after every epoch (empty: no checkpoint); with `resume`, an existing one continues.
  std::filesystem::path checkpoint;
  bool resume = false;
};

/// Batch norm normalises each channel over the batch: with one image per batch the variance
/// is zero and the statistics it learns are wrong, so training needs at least two.
inline void check_training_batch(int batch, const std::string& option = "--batch") {
  if (batch < 2)
    throw usage_error(option + " " + std::to_string(batch) +
                      ": training needs at least 2 images per batch (batch norm normalises over the batch)");
}

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
  check_training_batch(o.batch);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw usage_error("--lr must be a finite positive number");
  pcnas::nn::trainer_options to{.batch_size = static_cast<std::size_t>(o.batch),
                                .validation_images = data.val.count,
                                .seed = o.seed};
  if (o.augment) to.augment = {.crop_padding = 2, .horizontal_flip = true};
  pcnas::nn::supernet_trainer<cpu_backend, S> trainer(b, data.train, data.val, to);

  const std::size_t per_epoch = trainer.batches_per_epoch();
  const std::size_t total = per_epoch * static_cast<std::size_t>(o.epochs);
  const pcnas::search::cosine_schedule lr{.base_lr = o.lr, .total_steps = total};
  const std::string arch_text = pcnas::space::to_string<S>(arch);

  // The checkpoint belongs to this very training: the same architecture, schedule and data.
  const std::uint64_t fingerprint = pcnas::search::fingerprint_builder{}
                                        .add(std::string_view("retraining"))
                                        .add(std::string_view(S::name))
                                        .add(std::string_view(arch_text))
                                        .add(static_cast<std::uint64_t>(o.epochs))
                                        .add(static_cast<std::uint64_t>(o.batch))
                                        .add(o.lr)
                                        .add(o.seed)
                                        .add(static_cast<std::uint64_t>(o.augment))
                                        .add(static_cast<std::uint64_t>(data.train.count))
                                        .add(static_cast<std::uint64_t>(data.val.count))
                                        .value();
  from_scratch_result r;
  std::size_t epochs_done = 0;
  double earlier_seconds = 0.0;
  if (!o.checkpoint.empty() && o.resume && std::filesystem::exists(o.checkpoint)) {
    auto reader = pcnas::search::read_checkpoint(o.checkpoint, "retraining", fingerprint);
    epochs_done = static_cast<std::size_t>(reader.u64());
    r.val_accuracy = reader.f64();
    earlier_seconds = reader.f64();
    const std::string state = reader.str();
    if (!reader.at_end()) reader.fail("unexpected bytes after the trainer state");
    if (epochs_done > static_cast<std::size_t>(o.epochs)) reader.fail("it has more epochs than this training");
    pcnas::search::load_supernet(trainer, state, reader.source());
  }
  const auto save = [&](double seconds) {
    if (o.checkpoint.empty()) return;
    pcnas::search::checkpoint_writer w;
    w.str("retraining");
    w.u64(fingerprint);
    w.u64(epochs_done);
    w.f64(r.val_accuracy);
    w.f64(seconds);
    w.str(pcnas::search::save_supernet(trainer));
    pcnas::search::write_checkpoint(o.checkpoint, w);
  };

  std::fprintf(stderr, "training [%s] from scratch: %zu images (%zu held out, %zu test), %d epochs of %zu batches of %d, %s\n",
               arch_text.c_str(), data.train.count, data.val.count, data.test.count, o.epochs, per_epoch, o.batch,
               b.name().c_str());
  if (epochs_done > 0)
    std::fprintf(stderr, "resumed from %s after epoch %zu (validation accuracy %.2f %%)\n", o.checkpoint.string().c_str(),
                 epochs_done, 100 * r.val_accuracy);
  const std::string stop_state =
      o.checkpoint.empty() ? "training stopped; nothing was written"
                           : "retraining stopped; " + o.checkpoint.string() +
                                 " keeps the last finished epoch: run the same command with --resume to continue";

  pcnas::search::progress_printer progress;
  const auto t0 = std::chrono::steady_clock::now();
  progress.begin("train", total, epochs_done * per_epoch);
  for (std::size_t step = epochs_done * per_epoch; step < total; ++step) {
    stop_if_signalled(stop_state);
    const double loss = trainer.train_step(arch, lr(step));
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.3f", loss);
    progress.update(step + 1, detail);
    if ((step + 1) % per_epoch == 0) {
      r.val_accuracy = trainer.evaluate(arch);
      epochs_done = (step + 1) / per_epoch;
      save(earlier_seconds + seconds_since(t0));
      char line[160];
      std::snprintf(line, sizeof line, "epoch %zu/%d: loss %.4f, validation accuracy %.2f %%, %.0f s", epochs_done,
                    o.epochs, loss, 100 * r.val_accuracy, earlier_seconds + seconds_since(t0));
      progress.message(line);
    }
  }
  // Over all epochs, including those of an earlier, interrupted run.
  r.seconds = earlier_seconds + seconds_since(t0);
  r.images_per_s = r.seconds > 0 ? static_cast<double>(total) * o.batch / r.seconds : 0.0;
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
