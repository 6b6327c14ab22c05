// Training one architecture from scratch (a search's last step, or on its own): a cosine
// schedule over all epochs, validation after every epoch, test accuracy at the end. Resumable
// per epoch from a checkpoint that belongs to this very training (architecture, schedule, data).
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <pcnas/data/dataset.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/space/arch.hpp>

namespace pcnas::nn {

struct train_architecture_options {
  int epochs = 15;
  int batch = 128;
  double lr = 0.1;                  // base learning rate of the cosine schedule
  std::uint64_t seed = 0;
  bool augment = true;              // random crops (padding 2) and horizontal flips
  std::filesystem::path weights;    // where to write the trained state (empty: nowhere)
  std::filesystem::path checkpoint; // written after every epoch (empty: none)
  bool resume = false;              // continue from `checkpoint` when it exists
};

struct train_architecture_result {
  double val_accuracy = 0.0;
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  double seconds = 0.0;             // over all epochs, including those of an interrupted run
  double images_per_s = 0.0;
  std::size_t resumed_after_epoch = 0;  // 0: started afresh
};

struct epoch_report {
  std::size_t epoch = 0;            // 1-based, just finished
  std::size_t epochs = 0;
  double loss = 0.0;                // of the epoch's last step
  double val_accuracy = 0.0;
  double seconds = 0.0;             // since the training began, interrupted runs included
};

/// Reports while training runs; each hook is optional and may throw to stop the training (the
/// last epoch's checkpoint stays valid).
struct train_architecture_callbacks {
  std::function<void(std::size_t total_steps, std::size_t first_step)> begin;
  std::function<void(std::size_t step, double loss)> step;  // 1-based step just taken
  std::function<void(const epoch_report&)> epoch;
  std::function<void(std::size_t epochs_done, double val_accuracy)> resumed;
};

/// Batch norm normalises each channel over the batch: with one image per batch the variance is
/// zero and the statistics it learns are wrong, so training needs at least two.
inline void check_train_architecture_options(const train_architecture_options& o) {
  if (o.epochs < 1) throw std::invalid_argument("training needs at least 1 epoch, got " + std::to_string(o.epochs));
  if (o.batch < 2)
    throw std::invalid_argument("training needs at least 2 images per batch (batch norm normalises over the batch), "
                                "got " + std::to_string(o.batch));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw std::invalid_argument("the learning rate must be finite and positive");
}

template <class S, class B>
train_architecture_result train_architecture(B& b, const data::dataset& train, const data::dataset& val,
                                             const data::dataset& test, const space::architecture<S>& arch,
                                             const train_architecture_options& o,
                                             const train_architecture_callbacks& cb = {}) {
  check_train_architecture_options(o);
  trainer_options to{.batch_size = static_cast<std::size_t>(o.batch), .validation_images = val.count, .seed = o.seed};
  if (o.augment) to.augment = {.crop_padding = 2, .horizontal_flip = true};
  supernet_trainer<B, S> trainer(b, train, val, to);

  const std::size_t per_epoch = trainer.batches_per_epoch();
  const std::size_t total = per_epoch * static_cast<std::size_t>(o.epochs);
  const search::cosine_schedule lr{.base_lr = o.lr, .total_steps = total};
  const std::string arch_text = space::to_string<S>(arch);
  const std::uint64_t fingerprint = search::fingerprint_builder{}
                                        .add(std::string_view("retraining"))
                                        .add(std::string_view(S::name))
                                        .add(std::string_view(arch_text))
                                        .add(static_cast<std::uint64_t>(o.epochs))
                                        .add(static_cast<std::uint64_t>(o.batch))
                                        .add(o.lr)
                                        .add(o.seed)
                                        .add(static_cast<std::uint64_t>(o.augment))
                                        .add(static_cast<std::uint64_t>(train.count))
                                        .add(static_cast<std::uint64_t>(val.count))
                                        .value();
  train_architecture_result r;
  std::size_t epochs_done = 0;
  double earlier_seconds = 0.0;
  if (!o.checkpoint.empty() && o.resume && std::filesystem::exists(o.checkpoint)) {
    auto reader = search::read_checkpoint(o.checkpoint, "retraining", fingerprint);
    epochs_done = static_cast<std::size_t>(reader.u64());
    r.val_accuracy = reader.f64();
    earlier_seconds = reader.f64();
    if (epochs_done > static_cast<std::size_t>(o.epochs)) reader.fail("it has more epochs than this training");
    search::load_supernet(trainer, reader);
    reader.expect_end("the trainer state");
    r.resumed_after_epoch = epochs_done;
    if (cb.resumed) cb.resumed(epochs_done, r.val_accuracy);
  }
  const auto save = [&](double seconds) {
    if (o.checkpoint.empty()) return;
    search::checkpoint_writer w;
    w.str("retraining");
    w.u64(fingerprint);
    w.u64(epochs_done);
    w.f64(r.val_accuracy);
    w.f64(seconds);
    search::save_supernet(trainer, w);
    search::write_checkpoint(o.checkpoint, w);
  };

  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return earlier_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (cb.begin) cb.begin(total, epochs_done * per_epoch);
  for (std::size_t step = epochs_done * per_epoch; step < total; ++step) {
    const double loss = trainer.train_step(arch, lr(step));
    if (cb.step) cb.step(step + 1, loss);
    if ((step + 1) % per_epoch == 0) {
      r.val_accuracy = trainer.evaluate(arch);
      epochs_done = (step + 1) / per_epoch;
      save(elapsed());
      if (cb.epoch) cb.epoch({epochs_done, static_cast<std::size_t>(o.epochs), loss, r.val_accuracy, elapsed()});
    }
  }
  r.seconds = elapsed();
  r.images_per_s = r.seconds > 0 ? static_cast<double>(total) * o.batch / r.seconds : 0.0;
  const auto stats = trainer.evaluate_stats(arch, test, 0);
  r.test_accuracy = stats.accuracy();
  r.test_loss = stats.mean_loss();
  if (!o.weights.empty()) {
    std::ostringstream state;
    trainer.save(state);
    io::write_file_atomically(o.weights, state.str());
  }
  return r;
}

}  // namespace pcnas::nn
