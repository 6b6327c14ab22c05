// Training one architecture from scratch for the `train` command and the retraining step of
// `search`: nn::train_architecture, with its progress on the terminal and a stop on SIGINT or
// SIGTERM.
#pragma once

#include "common.hpp"
#include "interrupt.hpp"

#include <pcnas/nn/train_architecture.hpp>
#include <pcnas/search/progress.hpp>

namespace pcnas_cli {

/// Batch norm normalises each channel over the batch: with one image per batch the variance
/// is zero and the statistics it learns are wrong, so training needs at least two.
inline void check_training_batch(int batch, const std::string& option = "--batch") {
  if (batch < 2)
    throw usage_error(option + " " + std::to_string(batch) +
                      ": training needs at least 2 images per batch (batch norm normalises over the batch)");
}

template <class S>
pcnas::nn::train_architecture_result train_from_scratch(cpu_backend& b, const fmnist_data& data,
                                                        const pcnas::space::architecture<S>& arch,
                                                        const pcnas::nn::train_architecture_options& o) {
  check_training_batch(o.batch);
  std::fprintf(stderr, "training [%s] from scratch: %zu images (%zu held out, %zu test), %d epochs of batches of %d, %s\n",
               pcnas::space::to_string<S>(arch).c_str(), data.train.count, data.val.count, data.test.count, o.epochs,
               o.batch, b.name().c_str());
  const std::string stop_state =
      o.checkpoint.empty() ? "training stopped; nothing was written"
                           : "retraining stopped; " + o.checkpoint.string() +
                                 " keeps the last finished epoch: run the same command with --resume to continue";
  pcnas::search::progress_printer progress;
  pcnas::nn::train_architecture_callbacks cb;
  cb.resumed = [&](std::size_t epochs, double val) {
    std::fprintf(stderr, "resumed from %s after epoch %zu (validation accuracy %.2f %%)\n", o.checkpoint.string().c_str(),
                 epochs, 100 * val);
  };
  cb.begin = [&](std::size_t total, std::size_t first) { progress.begin("train", total, first); };
  cb.step = [&](std::size_t step, double loss) {
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.3f", loss);
    progress.update(step, detail);
    stop_if_signalled(stop_state);
  };
  cb.epoch = [&](const pcnas::nn::epoch_report& e) {
    char line[160];
    std::snprintf(line, sizeof line, "epoch %zu/%zu: loss %.4f, validation accuracy %.2f %%, %.0f s", e.epoch, e.epochs,
                  e.loss, 100 * e.val_accuracy, e.seconds);
    progress.message(line);
  };
  return pcnas::nn::train_architecture<S>(b, data.train, data.val, data.test, arch, o, cb);
}

}  // namespace pcnas_cli
