// Two choices of one layer with the same token: architecture text could not tell them apart.
// expect: check_layer<1, 8, .*two choices of the layer have the same token
#include <pcnas/space.hpp>

template <int Kernel, int Expansion>
struct mbconv_se {};

// The token forgets the expansion, so mbconv_se<3, 4> and mbconv_se<3, 6> share "se3".
template <int K, int E>
struct pcnas::space::op_traits<mbconv_se<K, E>> {
#ifdef PCNAS_MISUSE
  static constexpr std::string_view name = pcnas::space::token_v<'s', 'e', K>;
#else
  static constexpr std::string_view name = pcnas::space::token_v<'s', 'e', K, 'e', E>;
#endif
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) { return op_traits<mbconv<K, E>>::cost(in, out); }
};

using namespace pcnas::space;
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>,
                       body<layer<8, 8, 1, choices<mbconv<3, 3>>>,
                            layer<8, 8, 1, choices<mbconv_se<3, 4>, mbconv_se<3, 6>, zero>>>,
                       head<8, 2>>;
static_assert(s::is_valid);
static_assert(token_v<'k', 3, 'e', 6> == "k3e6");
static_assert(token_v<'c', 'o', 'n', 'v', 11, 'x', 11> == "conv11x11");
static_assert(op_traits<conv<3>>::name == "conv3x3");
