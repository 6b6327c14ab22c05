// A user op whose module's forward forgets the mode: check_module names forward and its signature.
// expect: An op module must have forward\(context<B>&, activation<B> x, mode\)
#include <pcnas/nn/module_concept.hpp>
#include <pcnas/testing/naive_backend.hpp>

namespace user {

template <class B>
struct my_module {
#ifdef PCNAS_MISUSE
  pcnas::nn::activation<B> forward(pcnas::nn::context<B>&, pcnas::nn::activation<B> x) { return x; }
#else
  pcnas::nn::activation<B> forward(pcnas::nn::context<B>&, pcnas::nn::activation<B> x, pcnas::nn::mode) { return x; }
#endif
  pcnas::nn::activation<B> backward(pcnas::nn::context<B>&, pcnas::nn::activation<B> dy) { return dy; }
  void release() {}
  pcnas::nn::parameter_list<B> parameters() { return {}; }
  pcnas::nn::buffer_list<B> buffers() { return {}; }
  void reset_running_stats(B&) {}
};

}  // namespace user

using backend = pcnas::testing::naive_backend<float>;
static_assert(pcnas::nn::check_module<backend, user::my_module<backend>>());

int main() {}
