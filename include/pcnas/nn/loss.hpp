// Softmax cross-entropy with label smoothing: the loss statistics stay on the device until read,
// so that a training loop synchronises only when it reports.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/context.hpp>

#include <array>
#include <span>
#include <stdexcept>

namespace pcnas::nn {

struct cross_entropy_options {
  double label_smoothing = 0.1;
};

struct loss_stats {
  double loss_sum = 0;  // summed over samples
  double correct = 0;   // samples whose largest logit is the label
  index samples = 0;
  double mean_loss() const noexcept { return samples > 0 ? loss_sum / static_cast<double>(samples) : 0.0; }
  double accuracy() const noexcept { return samples > 0 ? correct / static_cast<double>(samples) : 0.0; }
};

template <class B>
class cross_entropy {
  static_assert(backend::check_backend<B>());

 public:
  explicit cross_entropy(B& b, cross_entropy_options o = {}) : options_(o), stats_(b.allocate(2)) {
    if (o.label_smoothing < 0 || o.label_smoothing >= 1)
      throw std::invalid_argument("pcnas::nn::cross_entropy: label smoothing must lie in [0, 1)");
    reset(b);
  }

  const cross_entropy_options& options() const noexcept { return options_; }

  // Adds this batch's summed loss and correct count to the device-side totals.
  void forward(B& b, const activation<B>& logits, const backend::label_tensor_t<B>& labels) {
    b.softmax_cross_entropy_forward(desc(logits), logits.tensor(), labels, stats_);
    samples_ += logits.shape().n;
  }

  // Gradient of the batch's mean loss with respect to the logits.
  activation<B> backward(context<B>& ctx, const activation<B>& logits, const backend::label_tensor_t<B>& labels) {
    activation<B> d = ctx.acquire(logits.shape());
    ctx.backend().softmax_cross_entropy_backward(desc(logits), logits.tensor(), labels, d.tensor());
    return d;
  }

  // Totals since the last reset (downloads, so it waits for the device).
  loss_stats read(B& b) {
    std::array<backend::value_type_t<B>, 2> host{};
    b.download(stats_, std::span<backend::value_type_t<B>>(host));
    return {static_cast<double>(host[0]), static_cast<double>(host[1]), samples_};
  }
  void reset(B& b) {
    b.fill(2, backend::value_type_t<B>(0), stats_);
    samples_ = 0;
  }

 private:
  backend::cross_entropy_desc desc(const activation<B>& logits) const {
    const auto& s = logits.shape();
    return {s.n, s.h * s.w * s.c, options_.label_smoothing};
  }
  cross_entropy_options options_;
  backend::tensor_t<B> stats_;
  index samples_ = 0;
};

}  // namespace pcnas::nn
