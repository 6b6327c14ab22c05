// The calls every search makes into a supernet, with the checks that turn a silent failure
// (a diverged loss, an accuracy outside [0, 1], a supernet for another space) into a message.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <pcnas/search/supernet_concept.hpp>

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

inline double checked_accuracy(double accuracy, std::span<const int> arch) {
  if (!(accuracy >= 0.0 && accuracy <= 1.0))
    throw std::runtime_error("the supernet's evaluate() returned " + std::to_string(accuracy) +
                             " for architecture " + arch_to_string(arch) + "; an accuracy must be in [0, 1]");
  return accuracy;
}

template <class Supernet>
double checked_evaluate(Supernet& net, std::span<const int> arch, bool recalibrate) {
  if (recalibrate) net.recalibrate(arch);
  return checked_accuracy(static_cast<double>(net.evaluate(arch)), arch);
}

// Many paths at once: through the supernet's evaluate_all where it has one (back to back on a
// device), else one at a time.
template <class Supernet>
std::vector<double> checked_evaluate_all(Supernet& net, std::span<const std::vector<int>> archs, bool recalibrate) {
  std::vector<double> accuracies;
  if constexpr (supernet_has_evaluate_all<Supernet>) {
    accuracies = net.evaluate_all(archs, recalibrate);
    if (accuracies.size() != archs.size())
      throw std::runtime_error("the supernet's evaluate_all() returned " + std::to_string(accuracies.size()) +
                               " accuracies for " + std::to_string(archs.size()) + " architectures");
    for (std::size_t i = 0; i < archs.size(); ++i) checked_accuracy(accuracies[i], archs[i]);
  } else {
    for (const auto& a : archs) accuracies.push_back(checked_evaluate(net, a, recalibrate));
  }
  return accuracies;
}

}  // namespace detail
}  // namespace pcnas::search
