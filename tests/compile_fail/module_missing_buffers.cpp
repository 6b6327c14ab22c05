// A user op whose module has no buffers(): building a supernet over it names the missing member.
// expect: An op module must have buffers\(\) returning a buffer_list<B>
#include <pcnas/nn/choice_block.hpp>
#include <pcnas/testing/naive_backend.hpp>

namespace user {

struct my_op {};

template <class B>
struct my_module {
  pcnas::nn::activation<B> forward(pcnas::nn::context<B>&, pcnas::nn::activation<B> x, pcnas::nn::mode) { return x; }
  pcnas::nn::activation<B> backward(pcnas::nn::context<B>&, pcnas::nn::activation<B> dy) { return dy; }
  void release() {}
  pcnas::nn::parameter_list<B> parameters() { return {}; }
#ifndef PCNAS_MISUSE
  pcnas::nn::buffer_list<B> buffers() { return {}; }
#endif
  void reset_running_stats(B&) {}
};

}  // namespace user

template <class B>
struct pcnas::nn::op_module<B, user::my_op> {
  using type = user::my_module<B>;
  static type make(B&, const module_spec&, pcnas::rng&) { return {}; }
};

using backend = pcnas::testing::naive_backend<float>;
static_assert(sizeof(pcnas::nn::choice_block<backend, pcnas::space::choices<user::my_op, pcnas::space::zero>>) > 0);

int main() {}
