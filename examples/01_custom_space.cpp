// A user writes a search space of their own in a few lines, including an op the
// library does not ship (MBConv with squeeze-and-excite), then prints it with
// its costs. Nothing in the library is edited.
#include <pcnas/space.hpp>

#include <cstdio>
#include <string>

// 1. The new op: a descriptor type...
template <int Kernel, int Expansion>
struct mbconv_se {};

// ...and its traits: the token in architecture text (built from both parameters, since two
// choices of a layer with one token would not compile) and its analytic cost.
template <int K, int E>
struct pcnas::space::op_traits<mbconv_se<K, E>> {
  static constexpr std::string_view name = pcnas::space::token_v<'s', 'e', K, 'e', E>;  // "se3e4"
  static constexpr int kernel = K;
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) {
    op_cost c = op_traits<mbconv<K, E>>::cost(in, out);  // the MBConv part
    const std::int64_t mid = std::int64_t{in.channels} * E, squeeze = mid / 4;
    c.macs += 2 * mid * squeeze;                            // two FC layers on the pooled vector
    c.params += 2 * mid * squeeze + mid + squeeze;          // their weights and biases
    c.activation_bytes += (mid + squeeze) * pcnas::space::bytes_per_activation;
    return c;
  }
};

// 2. The space: CIFAR-sized input, a stem, three stages, a head.
namespace my {
using namespace pcnas::space;
using ops = choices<mbconv<3, 3>, mbconv<5, 6>, mbconv_se<3, 4>, mbconv_se<5, 4>>;
struct cifar_space : search_space<input<3, 32, 32>, stem<fixed<conv<3>, 16>>,
                                  body<stage<2, 16, 32, 1, ops, with_zero<ops>>,  //
                                       stage<3, 32, 64, 2, ops, with_zero<ops>>,  //
                                       stage<2, 64, 128, 2, ops, with_zero<ops>>>,
                                  head<512, 10>> {
  static constexpr std::string_view name = "my_cifar";
};
}  // namespace my

int main() {
  using S = my::cifar_space;
  std::printf("space %s: %zu searchable layers, %llu architectures\n", std::string(S::name).c_str(), S::num_layers,
              static_cast<unsigned long long>(S::num_architectures));
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    std::printf("  %-38s", pcnas::space::describe_layer<S>(l).c_str());
    for (std::size_t c = 0; c < S::num_choices[l]; ++c)
      std::printf(" %s=%.2fM", std::string(S::choice_names[l][c]).c_str(), S::choice_costs[l][c].macs / 1e6);
    std::printf("\n");
  }
  const auto arch = pcnas::space::parse_arch<S>("se3e4 zero k5e6 se5e4 zero k3e3 se5e4");
  const auto cost = pcnas::cost::arch_cost<S>(arch);
  std::printf("architecture '%s': %.2f M MACs, %.3f M params, %.2f MB activations per image\n",
              pcnas::space::to_string<S>(arch).c_str(), cost.macs / 1e6, cost.params / 1e6,
              cost.activation_bytes / 1e6);
}
