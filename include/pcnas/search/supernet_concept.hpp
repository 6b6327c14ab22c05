// What the search needs from a supernet, and nothing more: the search never sees tensors, so a
// user's own network (LibTorch, hand-written CUDA) plugs in by providing these members.
// check_supernet<S>() reports each missing member in a sentence of its own.
#pragma once

#include <concepts>
#include <cstddef>
#include <iosfwd>
#include <span>
#include <vector>

namespace pcnas::search {

// One concept per member, so that a failure names the member and not the whole contract.
template <class S>
concept supernet_has_num_layers = requires(const S& s) {
  { s.num_layers() } -> std::convertible_to<std::size_t>;
};
template <class S>
concept supernet_has_num_choices = requires(const S& s, std::size_t layer) {
  { s.num_choices(layer) } -> std::convertible_to<std::size_t>;
};
template <class S>
concept supernet_has_train_step = requires(S& s, std::span<const int> arch, double learning_rate) {
  { s.train_step(arch, learning_rate) } -> std::convertible_to<double>;
};
template <class S>
concept supernet_has_recalibrate = requires(S& s, std::span<const int> arch) { s.recalibrate(arch); };
template <class S>
concept supernet_has_evaluate = requires(S& s, std::span<const int> arch) {
  { s.evaluate(arch) } -> std::convertible_to<double>;
};
template <class S>
concept supernet_has_save = requires(const S& s, std::ostream& out) { s.save(out); };
template <class S>
concept supernet_has_load = requires(S& s, std::istream& in) { s.load(in); };

// The contract, member by member:
//  - num_layers(), num_choices(layer): the shape of the space, as the constraint's model has it;
//  - train_step(arch, learning_rate) -> loss: one SGD step on the next batch of the supernet's own
//    training stream through that path only; throws on a NaN loss;
//  - recalibrate(arch): batch-norm statistics for that path from a few training batches;
//  - evaluate(arch) -> accuracy in [0, 1] on a held-out validation subset (never the test set),
//    deterministic for a given state, so that equal paths give equal numbers;
//  - save(ostream&) const, load(istream&): the whole state, optimizer and data-stream position
//    included, so that a resumed search continues exactly where it stopped.
// (Named searchable_supernet: nn::supernet is a network class, and nn::supernet_trainer, the
// network bound to its data, is what models this.)
template <class S>
concept searchable_supernet = supernet_has_num_layers<S> && supernet_has_num_choices<S> &&
                              supernet_has_train_step<S> && supernet_has_recalibrate<S> &&
                              supernet_has_evaluate<S> && supernet_has_save<S> && supernet_has_load<S>;

// Optional: `std::vector<double> evaluate_all(std::span<const std::vector<int>> archs, bool
// recalibrate)`, the accuracies of many paths (each recalibrated first when asked), with the
// meaning of the one-at-a-time calls. A device-resident supernet issues them back to back and
// reads the results once; searches use it where they have several paths to score at once.
template <class S>
concept supernet_has_evaluate_all = requires(S& s, std::span<const std::vector<int>> archs, bool recalibrate) {
  { s.evaluate_all(archs, recalibrate) } -> std::convertible_to<std::vector<double>>;
};

// Every search calls this first: one readable error per missing member, instead of a
// concept-satisfaction trace. Returns true so it can sit in a static_assert without adding a
// second, vaguer error after the specific ones; callers guard their bodies with the concept.
template <class S>
consteval bool check_supernet() {
  static_assert(supernet_has_num_layers<S>,
                "The supernet must provide `std::size_t num_layers() const`: the number of searchable layers.");
  static_assert(supernet_has_num_choices<S>,
                "The supernet must provide `std::size_t num_choices(std::size_t layer) const`: the number of "
                "candidate operators of that layer.");
  static_assert(supernet_has_train_step<S>,
                "The supernet must provide `double train_step(std::span<const int> arch, double learning_rate)`: one "
                "SGD step on its next training batch through that path, returning the loss (and throwing on NaN).");
  static_assert(supernet_has_recalibrate<S>,
                "The supernet must provide `void recalibrate(std::span<const int> arch)`: batch-norm statistics "
                "for that path, from a few training batches.");
  static_assert(supernet_has_evaluate<S>,
                "The supernet must provide `double evaluate(std::span<const int> arch)`: the accuracy in [0, 1] of "
                "that path on a held-out validation subset (never the test set).");
  static_assert(supernet_has_save<S>,
                "The supernet must provide `void save(std::ostream&) const`: its whole state (weights, optimizer, "
                "data-stream position), so that a search can checkpoint it.");
  static_assert(supernet_has_load<S>,
                "The supernet must provide `void load(std::istream&)`: the inverse of save(), so that a search can "
                "resume exactly.");
  return true;
}

}  // namespace pcnas::search
