// The calls every search makes into a supernet, with the checks that turn a silent failure
// (a diverged loss, an accuracy outside [0, 1], a supernet for another space) into a message.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>

#include <pcnas/cost/constraint.hpp>

namespace pcnas::search {

inline std::string arch_to_string(std::span<const int> arch) {
  std::string s = "[";
  for (std::size_t i = 0; i < arch.size(); ++i) {
    if (i != 0) s += ' ';
    s += std::to_string(arch[i]);
  }
  s += ']';
  return s;
}

namespace detail {

template <class Supernet>
void check_same_shape(const Supernet& net, const cost::constraint& k) {
  const std::size_t layers = static_cast<std::size_t>(net.num_layers());
  if (layers != k.num_layers())
    throw std::invalid_argument("the supernet has " + std::to_string(layers) + " searchable layers but the "
                                "constraint's cost model has " + std::to_string(k.num_layers()));
  for (std::size_t l = 0; l < layers; ++l) {
    const std::size_t n = static_cast<std::size_t>(net.num_choices(l));
    if (n != k.num_choices(l))
      throw std::invalid_argument("layer " + std::to_string(l) + ": the supernet has " + std::to_string(n) +
                                  " choices but the cost model has " + std::to_string(k.num_choices(l)));
  }
}

template <class Supernet>
double checked_train_step(Supernet& net, std::span<const int> arch, double learning_rate, std::size_t step) {
  const double loss = static_cast<double>(net.train_step(arch, learning_rate));
  if (!std::isfinite(loss))
    throw std::runtime_error("training diverged: the loss is " + std::to_string(loss) + " at step " +
                             std::to_string(step) + " on architecture " + arch_to_string(arch) +
                             " (learning rate " + std::to_string(learning_rate) +
                             "); the last checkpoint, if any, is intact");
  return loss;
}

template <class Supernet>
double checked_evaluate(Supernet& net, std::span<const int> arch, bool recalibrate) {
  if (recalibrate) net.recalibrate(arch);
  const double accuracy = static_cast<double>(net.evaluate(arch));
  if (!(accuracy >= 0.0 && accuracy <= 1.0))
    throw std::runtime_error("the supernet's evaluate() returned " + std::to_string(accuracy) +
                             " for architecture " + arch_to_string(arch) + "; an accuracy must be in [0, 1]");
  return accuracy;
}

}  // namespace detail
}  // namespace pcnas::search
