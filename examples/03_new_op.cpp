// A new op end to end, with nothing in the library edited: Fused-MBConv (EfficientNetV2), a k×k
// convolution C→eC (stride s) + BN + ReLU6, then a 1×1 projection eC→C' + BN, plus x when s = 1
// and C = C'. Its descriptor and costs (op_traits), its module on any backend (op_module), its
// gradients checked by the conformance kit, and a PC-NAS search over a space that mixes it with
// MBConv, on Fashion-MNIST. Usage: 03_new_op [steps] (default 300); docs/ops.md walks through it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <pcnas/backend/eigen.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/space/presets.hpp>
#include <pcnas/testing/module_checks.hpp>

#include <cstdio>
#include <cstdlib>

// 1. The descriptor, and its traits: the token in architecture text ("f3e4") and the costs.
template <int Kernel, int Expansion>
struct fused_mbconv {};

template <int K, int E>
struct pcnas::space::op_traits<fused_mbconv<K, E>> {
  static_assert(E >= 2, "a Fused-MBConv expands (E >= 2); with E = 1 it is a plain convolution");
  static constexpr std::string_view name = token_v<'f', K, 'e', E>;
  static constexpr int kernel = K;  // checked by the space: positive and odd
  static constexpr int kernels = 4;  // launched: k x k conv, BN, 1x1 conv, BN (for the roofline model)
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) {
    const std::int64_t c = in.channels, mid = c * E, c2 = out.channels;
    const std::int64_t px = std::int64_t{out.height} * out.width;
    return {.macs = c * mid * K * K * px + mid * c2 * px,
            .params = c * mid * K * K + 2 * mid + mid * c2 + 2 * c2,  // weights, and BN's γ and β
            .activation_bytes = (mid + c2) * px * bytes_per_activation};
  }
};

// 2. The module, on any backend B, written with the contract's primitives. nn::batch_norm does
// the three modes (train, eval, recalibrate) and takes the backend's fused BN paths.
namespace my {

using namespace pcnas;
using nn::activation;
using nn::mode;

template <class B>
class fused_mbconv_module {
 public:
  struct config {
    backend::index in_channels, height, width, out_channels, kernel, expansion, stride;
    bool input_gradient = true;
    nn::batch_norm_options bn{};
  };

  fused_mbconv_module(B& b, const config& c, rng& r)
      : cfg_(c), hidden_(c.in_channels * c.expansion),
        expand_(nn::make_parameter(b, "expand.weight",
                                   nn::init::kaiming_normal_fan_out(r, conv(1).weight_size(), hidden_ * c.kernel * c.kernel),
                                   true)),
        expand_bn_(b, hidden_, "expand_bn", c.bn),
        project_(nn::make_parameter(b, "project.weight",
                                    nn::init::kaiming_normal_fan_out(r, hidden_ * c.out_channels, c.out_channels), true)),
        project_bn_(b, c.out_channels, "project_bn", c.bn) {}

  bool residual() const { return cfg_.stride == 1 && cfg_.in_channels == cfg_.out_channels; }

  activation<B> forward(nn::context<B>& ctx, activation<B> x, mode m) {
    B& b = ctx.backend();
    const backend::conv2d_desc d = conv(x.shape().n);
    const backend::act_shape mid = d.out(), out{mid.n, mid.h, mid.w, cfg_.out_channels};
    activation<B> z1 = ctx.acquire(mid), a1 = ctx.acquire(mid), z2 = ctx.acquire(out), y = ctx.acquire(out);
    b.conv2d_forward(d, x.tensor(), expand_.value, z1.tensor());
    expand_bn_.forward(b, m, mid.rows(), z1.tensor(), a1.tensor(), nn::bn_activation::relu6);
    b.pointwise_forward({out.rows(), hidden_, cfg_.out_channels}, a1.tensor(), project_.value, z2.tensor());
    if (residual())
      project_bn_.forward_add(b, m, out.rows(), z2.tensor(), x.tensor(), y.tensor());
    else
      project_bn_.forward(b, m, out.rows(), z2.tensor(), y.tensor(), nn::bn_activation::none);
    // Training keeps what backward needs; other modes drop it all here.
    if (m == mode::train) saved_ = {std::move(x), std::move(z1), std::move(a1), std::move(z2)};
    return y;
  }

  activation<B> backward(nn::context<B>& ctx, activation<B> dy) {
    if (!saved_.x) throw std::logic_error("fused_mbconv_module::backward: no training forward to differentiate");
    B& b = ctx.backend();
    saved s = std::move(saved_);
    saved_ = {};
    const backend::conv2d_desc d = conv(s.x.shape().n);
    const backend::act_shape mid = d.out(), out = dy.shape();
    const backend::pointwise_desc pd{out.rows(), hidden_, cfg_.out_channels};
    activation<B> dz2 = ctx.acquire(out), da1 = ctx.acquire(mid), dz1 = ctx.acquire(mid);
    project_bn_.backward(ctx, out.rows(), s.z2.tensor(), s.z2.tensor(), dy.tensor(), dz2.tensor(),
                         nn::bn_activation::none);
    b.pointwise_backward_data(pd, dz2.tensor(), project_.value, da1.tensor(), false);
    b.pointwise_backward_filter(pd, s.a1.tensor(), dz2.tensor(), project_.grad);
    expand_bn_.backward(ctx, mid.rows(), s.z1.tensor(), s.a1.tensor(), da1.tensor(), dz1.tensor(),
                        nn::bn_activation::relu6);
    b.conv2d_backward_filter(d, s.x.tensor(), dz1.tensor(), expand_.grad);
    if (!cfg_.input_gradient) return {};
    activation<B> dx = ctx.acquire(s.x.shape());
    b.conv2d_backward_data(d, dz1.tensor(), expand_.value, dx.tensor());
    if (residual()) b.add(s.x.shape().numel(), dx.tensor(), dy.tensor(), dx.tensor());
    return dx;
  }

  void release() { saved_ = {}; }
  nn::parameter_list<B> parameters() {
    nn::parameter_list<B> p{&expand_};
    expand_bn_.collect_parameters(p);
    p.push_back(&project_);
    project_bn_.collect_parameters(p);
    return p;
  }
  nn::buffer_list<B> buffers() {
    nn::buffer_list<B> out;
    expand_bn_.collect_buffers(out);
    project_bn_.collect_buffers(out);
    return out;
  }
  void reset_running_stats(B& b) {
    expand_bn_.reset_running_stats(b);
    project_bn_.reset_running_stats(b);
  }

 private:
  backend::conv2d_desc conv(backend::index n) const {
    return {{n, cfg_.height, cfg_.width, cfg_.in_channels}, hidden_, cfg_.kernel, cfg_.stride, cfg_.kernel / 2};
  }
  struct saved {
    activation<B> x, z1, a1, z2;
  };
  config cfg_;
  backend::index hidden_;
  nn::parameter<B> expand_;
  nn::batch_norm<B> expand_bn_;
  nn::parameter<B> project_;
  nn::batch_norm<B> project_bn_;
  saved saved_;
};

}  // namespace my

// 3. The link from descriptor to module: the supernet builds one per layer where the op is a choice.
template <class B, int K, int E>
struct pcnas::nn::op_module<B, fused_mbconv<K, E>> {
  using type = my::fused_mbconv_module<B>;
  static type make(B& b, const module_spec& s, pcnas::rng& r) {
    return type(b,
                {.in_channels = s.layer.in.channels, .height = s.layer.in.height, .width = s.layer.in.width,
                 .out_channels = s.layer.out.channels, .kernel = K, .expansion = E, .stride = s.layer.stride,
                 .input_gradient = s.input_gradient, .bn = s.bn},
                r);
  }
};
static_assert(pcnas::nn::check_op_module<pcnas::backend::eigen::backend, fused_mbconv<3, 4>>());

// 4. Its gradients, through the conformance kit: finite differences on the reference backend in
// double, and the Eigen backend against the reference (outputs, gradients, statistics).
TEST_CASE("Fused-MBConv: gradients by finite differences, and the Eigen backend against the reference") {
  struct kind {
    pcnas::backend::index in, out, h, k, e, s;
  };
  for (const kind k : {kind{4, 4, 6, 3, 2, 1}, kind{4, 6, 7, 3, 3, 2}, kind{3, 5, 6, 5, 2, 1}}) {
    const std::string name = "Fused-MBConv " + std::to_string(k.in) + "->" + std::to_string(k.out) + " k" +
                             std::to_string(k.k) + "e" + std::to_string(k.e) + " s" + std::to_string(k.s);
    auto make = [&](auto& b, pcnas::rng& r) {
      using B = std::remove_cvref_t<decltype(b)>;
      return my::fused_mbconv_module<B>(
          b, {.in_channels = k.in, .height = k.h, .width = k.h, .out_channels = k.out, .kernel = k.k, .expansion = k.e,
              .stride = k.s},
          r);
    };
    const pcnas::backend::act_shape in{2, k.h, k.h, k.in};
    pcnas::testing::naive_backend<double> reference;
    pcnas::testing::check_module_gradients(reference, make, in, 70, pcnas::testing::tolerance_for<double>(), name);
    pcnas::backend::eigen::backend cpu({.threads = 2});
    pcnas::testing::check_module_against_reference(cpu, make, in, 71, pcnas::testing::tolerance_for<float>(), name);
  }
}

// 5. A space that uses it: fmnist_micro's shape, with Fused-MBConv beside MBConv in every layer.
namespace my {
using namespace pcnas::space;
using ops = choices<mbconv<3, 3>, mbconv<5, 6>, fused_mbconv<3, 2>, fused_mbconv<3, 4>>;
struct fused_space : search_space<input<1, 28, 28>, stem<fixed<conv<3>, 8, 2>>,
                                  body<stage<2, 8, 16, 2, ops, with_zero<ops>>, stage<2, 16, 32, 2, ops, with_zero<ops>>>,
                                  head<64, 10>> {
  static constexpr std::string_view name = "fused_micro";
};
}  // namespace my

int main(int argc, char** argv) {
  using namespace pcnas;
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300;

  doctest::Context checks;
  checks.setOption("no-version", true);
  if (const int failed = checks.run(); failed != 0) return failed;

  using S = my::fused_space;
  const auto split = data::split_train_val(data::load_fashion_mnist(data::split::train), 5000, /*seed=*/0);
  backend::eigen::backend cpu({.threads = 2});
  nn::supernet_trainer<backend::eigen::backend, S> supernet(cpu, split.train, split.val, {.validation_images = 1000});
  const auto macs = cost::analytic_model<S>(cost::analytic_measure::macs);
  const double limit = macs.min_total() + 0.5 * (macs.max_total() - macs.min_total());
  const auto result = search::pc_nas_search(supernet, cost::constraint(macs, {.limit = limit}),
                                            {.pool_size = 3, .completions = 2, .total_steps = steps});

  const auto arch = space::arch_from_indices<S>(result.best_arch);
  std::printf("%s: %zu architectures; after %zu training steps, PC-NAS found %s: %.3f M MACs (limit %.3f), "
              "%.2f %% held-out accuracy with shared weights\n",
              std::string(S::name).c_str(), static_cast<std::size_t>(S::num_architectures), result.steps_done,
              space::to_string<S>(arch).c_str(), macs.predict(result.best_arch), limit,
              100 * result.best_accuracy);
  for (const auto& member : result.final_pool)
    std::printf("  final pool: %s  %.2f %%\n", space::to_string<S>(space::arch_from_indices<S>(member.prefix)).c_str(),
                100 * member.potential);
  return result.best_accuracy > 0.2 ? 0 : 1;  // well above chance (10 %), or the example has failed
}
