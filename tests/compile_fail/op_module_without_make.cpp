// An op_module specialisation that names its module but cannot build it.
// expect: must build its module: `static type make\(B&, const pcnas::nn::module_spec&, pcnas::rng&\)`
#include <pcnas/nn/choice_block.hpp>
#include <pcnas/testing/naive_backend.hpp>

namespace user {
struct my_op {};
}  // namespace user

template <class B>
struct pcnas::nn::op_module<B, user::my_op> {
  using type = pcnas::nn::identity<B>;
#ifndef PCNAS_MISUSE
  static type make(B&, const module_spec&, pcnas::rng&) { return {}; }
#endif
};

using backend = pcnas::testing::naive_backend<float>;
static_assert(pcnas::nn::check_op_module<backend, user::my_op>());

int main() {}
