// SGD with (Nesterov) momentum and weight decay on the parameters that ask for it, and the
// cosine learning-rate schedule. A backend with sgd_update_many gets a whole step in one call.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/parameter.hpp>

#include <cmath>
#include <numbers>
#include <span>
#include <vector>

namespace pcnas::nn {

struct sgd_options {
  double momentum = 0.9;
  double weight_decay = 4e-5;  // not applied to parameters with decay == false (batch norm)
  bool nesterov = true;
};

template <class B>
class sgd {
 public:
  explicit sgd(sgd_options o = {}) : options_(o) {}
  const sgd_options& options() const noexcept { return options_; }

  void step(B& b, parameter<B>& p, double learning_rate) const {
    b.sgd_update({p.size, learning_rate, options_.momentum, p.decay ? options_.weight_decay : 0.0,
                  options_.nesterov},
                 p.value, p.grad, p.momentum);
  }
  // Only the listed parameters move: a supernet passes the sampled path's.
  void step(B& b, std::span<parameter<B>* const> params, double learning_rate) const {
    if constexpr (backend::has_sgd_update_many<B>) {
      items_.clear();
      for (auto* p : params) items_.push_back({p->size, p->decay, &p->value, &p->grad, &p->momentum});
      b.sgd_update_many({learning_rate, options_.momentum, options_.weight_decay, options_.nesterov},
                        std::span<const backend::sgd_item<backend::tensor_t<B>>>(items_));
    } else {
      for (auto* p : params) step(b, *p, learning_rate);
    }
  }
  void zero_momentum(B& b, std::span<parameter<B>* const> params) const {
    for (auto* p : params) b.fill(p->size, backend::value_type_t<B>(0), p->momentum);
  }

 private:
  sgd_options options_;
  mutable std::vector<backend::sgd_item<backend::tensor_t<B>>> items_;  // reused from step to step
};

// lr(t) = final + (base - final)·(1 + cos(π·t/total))/2 for t in [0, total].
inline double cosine_learning_rate(double base, backend::index step, backend::index total, double final_lr = 0.0) {
  if (total <= 0) return base;
  const double t = static_cast<double>(step < total ? step : total) / static_cast<double>(total);
  return final_lr + (base - final_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

}  // namespace pcnas::nn
