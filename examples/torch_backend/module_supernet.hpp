// The second LibTorch route: a supernet written directly in torch::nn modules, trained with
// autograd and torch::optim, that models pcnas::search::supernet, so that the generic PC-NAS
// searches it without any pcnas op module or backend. Its layers, candidates and channels are
// read from a pcnas search space, so the search's cost model describes exactly this network.
#pragma once

#include <pcnas/data/batcher.hpp>
#include <pcnas/data/images.hpp>
#include <pcnas/search/supernet_concept.hpp>
#include <pcnas/space/space.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pcnas_torch_example {

// conv + BN (+ ReLU6): the unit every block is made of. Bias-free convolution, as a BN follows.
struct conv_bn_impl : torch::nn::Module {
  conv_bn_impl(int in, int out, int kernel, int stride, int groups, bool relu6)
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                           .stride(stride)
                                                           .padding(kernel / 2)
                                                           .groups(groups)
                                                           .bias(false)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).momentum(0.1).eps(1e-5)))),
        relu6(relu6) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn->forward(conv->forward(x));
    return relu6 ? torch::hardtanh(y, 0.0, 6.0) : y;
  }
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  bool relu6;
};
TORCH_MODULE_IMPL(conv_bn, conv_bn_impl);

// MBConv(k, e) as pcnas::space::mbconv defines it: 1×1 expansion + BN + ReLU6 (absent when
// e = 1), k×k depthwise (the layer's stride) + BN + ReLU6, 1×1 projection + BN, plus the input
// when the stride is 1 and the channels are unchanged.
struct mbconv_block_impl : torch::nn::Module {
  mbconv_block_impl(int in, int out, int kernel, int expansion, int stride)
      : expand(expansion == 1 ? conv_bn(nullptr) : register_module("expand", conv_bn(in, in * expansion, 1, 1, 1, true))),
        depthwise(register_module("depthwise",
                                  conv_bn(in * expansion, in * expansion, kernel, stride, in * expansion, true))),
        project(register_module("project", conv_bn(in * expansion, out, 1, 1, 1, false))),
        residual(stride == 1 && in == out) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = project->forward(depthwise->forward(expand ? expand->forward(x) : x));
    return residual ? y + x : y;
  }
  conv_bn expand, depthwise, project;
  bool residual;
};
TORCH_MODULE_IMPL(mbconv_block, mbconv_block_impl);

// One pcnas op descriptor as a module; `zero` (the layer reduces to its shortcut) as Identity.
template <class Op>
torch::nn::AnyModule make_op(int in, int out, int stride) {
  if constexpr (std::is_same_v<Op, pcnas::space::zero>)
    return torch::nn::AnyModule(torch::nn::Identity());
  else if constexpr (requires { Op::expansion; })
    return torch::nn::AnyModule(mbconv_block(in, out, Op::kernel, Op::expansion, stride));
  else if constexpr (requires { Op::kernel; })
    return torch::nn::AnyModule(conv_bn(in, out, Op::kernel, stride, 1, true));
  else
    static_assert(sizeof(Op) == 0, "module_supernet knows the ops conv<k>, mbconv<k, e> and zero");
}

struct module_supernet_options {
  std::size_t batch_size = 128;
  std::size_t eval_batch_size = 500;
  std::size_t recalibration_batches = 4;  // training batches that set a path's BN statistics
  std::size_t validation_images = 2000;   // of the held-out split, for evaluate()
  std::uint64_t seed = 0;                 // weights and shuffling
  double momentum = 0.9;                  // Nesterov
  double weight_decay = 4e-5;             // convolution and linear weights and biases, not BN
  double label_smoothing = 0.1;
  torch::Device device = torch::kCPU;
};

// The supernet: the space's stem, one list of candidate modules per searchable layer, and its
// head (1×1 conv + BN + ReLU6, global average pooling, linear). A step trains the chosen path
// only: the other candidates get no gradient, so SGD leaves their weights and momenta alone.
template <class Space>
class module_supernet {
 public:
  // `train` and `validation` must outlive the supernet; validation is never the test set.
  module_supernet(const pcnas::data::dataset& train, const pcnas::data::dataset& validation,
                  module_supernet_options o = {})
      : options_(o),
        train_(train, {.batch_size = o.batch_size, .seed = o.seed, .mode = pcnas::data::batch_mode::train}),
        recalibration_(train, {.batch_size = o.batch_size, .seed = o.seed ^ 0x5ca1ab1eULL,
                               .mode = pcnas::data::batch_mode::train}),
        validation_(&validation) {
    if (static_cast<int>(train.channels) != Space::input_shape.channels ||
        static_cast<int>(train.height) != Space::input_shape.height)
      throw std::invalid_argument("module_supernet: the images do not have the space's input shape");
    torch::manual_seed(o.seed);
    build_stem(std::make_index_sequence<Space::num_stem_ops>{});
    build_layers(std::make_index_sequence<Space::num_layers>{});
    const auto last = Space::layers[Space::num_layers - 1].out;
    head_ = net_->register_module("head", conv_bn(last.channels, Space::head_channels, 1, 1, 1, true));
    classifier_ = net_->register_module("classifier", torch::nn::Linear(Space::head_channels, Space::num_classes));
    net_->to(o.device);

    std::vector<torch::Tensor> decayed, not_decayed;
    for (const auto& item : net_->named_parameters())
      (is_batch_norm(item.key()) ? not_decayed : decayed).push_back(item.value());
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::SGDOptions>(sgd(o.weight_decay)));
    groups.emplace_back(not_decayed, std::make_unique<torch::optim::SGDOptions>(sgd(0.0)));
    optimizer_ = std::make_unique<torch::optim::SGD>(std::move(groups), sgd(0.0));
  }

  std::size_t num_layers() const noexcept { return Space::num_layers; }
  std::size_t num_choices(std::size_t layer) const { return Space::num_choices.at(layer); }

  double train_step(std::span<const int> arch, double learning_rate) {
    check(arch);
    net_->train();
    // Gradients are reset to none, not zeroed: a zero gradient would still move a candidate
    // outside the path through weight decay and momentum.
    for (auto& p : net_->parameters()) p.mutable_grad().reset();
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(learning_rate);
    const auto batch = train_.next();
    const auto logits = forward(images(batch), arch);
    const auto loss = torch::nn::functional::cross_entropy(
        logits, labels(batch), torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing));
    const double value = loss.template item<double>();
    if (!std::isfinite(value)) throw std::runtime_error("module_supernet: the training loss is " + std::to_string(value));
    loss.backward();
    optimizer_->step();
    return value;
  }

  // The path's BN statistics from the same training batches every time: reset, then the
  // cumulative average (torch's momentum = none), as the library's own supernet does.
  void recalibrate(std::span<const int> arch) {
    check(arch);
    const torch::NoGradGuard no_grad;
    auto norms = path_batch_norms(arch);
    for (auto* bn : norms) {
      bn->reset_running_stats();
      bn->options.momentum(c10::nullopt);
    }
    net_->train();
    recalibration_.seek({0, 0});
    for (std::size_t k = 0; k < options_.recalibration_batches; ++k) (void)forward(images(recalibration_.next()), arch);
    for (auto* bn : norms) bn->options.momentum(0.1);
  }

  double evaluate(std::span<const int> arch) { return evaluate_on(arch, *validation_, options_.validation_images); }

  // Accuracy on up to max_images (0: all) of any data set, e.g. the test set for a final report;
  // the search itself only ever calls evaluate().
  double evaluate_on(std::span<const int> arch, const pcnas::data::dataset& ds, std::size_t max_images = 0) {
    check(arch);
    const torch::NoGradGuard no_grad;
    net_->eval();
    pcnas::data::batcher it(ds, {.batch_size = options_.eval_batch_size, .mode = pcnas::data::batch_mode::eval});
    const std::size_t total = std::min(max_images == 0 ? ds.count : max_images, ds.count);
    std::int64_t correct = 0;
    for (std::size_t seen = 0; seen < total;) {
      const auto batch = it.next();
      const auto n = static_cast<std::int64_t>(std::min(batch.size, total - seen));
      const auto predicted = forward(images(batch), arch).argmax(1).narrow(0, 0, n);
      correct += predicted.eq(labels(batch).narrow(0, 0, n)).sum().template item<std::int64_t>();
      seen += static_cast<std::size_t>(n);
    }
    return static_cast<double>(correct) / static_cast<double>(total);
  }

  // Weights, BN statistics, momenta and both data streams' positions, in torch's archive format.
  void save(std::ostream& out) const {
    torch::serialize::OutputArchive archive;
    net_->save(archive);
    torch::serialize::OutputArchive sgd_state;
    optimizer_->save(sgd_state);
    archive.write("optimizer", sgd_state);
    const auto p = train_.position();
    archive.write("train_position", torch::tensor({static_cast<std::int64_t>(p.epoch), static_cast<std::int64_t>(p.index)}));
    archive.save_to(out);
  }
  void load(std::istream& in) {
    torch::serialize::InputArchive archive;
    archive.load_from(in, options_.device);
    net_->load(archive);
    torch::serialize::InputArchive sgd_state;
    archive.read("optimizer", sgd_state);
    optimizer_->load(sgd_state);
    torch::Tensor p;
    archive.read("train_position", p);
    train_.seek({static_cast<std::uint64_t>(p[0].template item<std::int64_t>()), static_cast<std::uint64_t>(p[1].template item<std::int64_t>())});
  }

 private:
  torch::optim::SGDOptions sgd(double weight_decay) const {
    return torch::optim::SGDOptions(0.0).momentum(options_.momentum).nesterov(true).weight_decay(weight_decay);
  }
  static bool is_batch_norm(const std::string& name) { return name.find("bn.") != std::string::npos; }

  template <std::size_t... I>
  void build_stem(std::index_sequence<I...>) {
    (add_stem_op<I>(), ...);
  }
  template <std::size_t I>
  void add_stem_op() {
    using fixed = pcnas::space::type_at<I, typename Space::stem_list>;
    const auto& info = Space::stem_ops[I];
    stem_.push_back(make_op<typename fixed::op>(info.in.channels, info.out.channels, info.stride));
    net_->register_module("stem" + std::to_string(I), stem_.back().ptr());
  }
  template <std::size_t... I>
  void build_layers(std::index_sequence<I...>) {
    (add_layer<I>(static_cast<typename Space::template choices_at<I>*>(nullptr)), ...);
  }
  template <std::size_t I, class... Ops>
  void add_layer(pcnas::space::choices<Ops...>*) {
    const auto& info = Space::layers[I];
    auto& candidates = layers_.emplace_back();
    (candidates.push_back(make_op<Ops>(info.in.channels, info.out.channels, info.stride)), ...);
    for (std::size_t c = 0; c < candidates.size(); ++c)
      net_->register_module("layer" + std::to_string(I) + "_" + std::to_string(c), candidates[c].ptr());
  }

  torch::Tensor forward(torch::Tensor x, std::span<const int> arch) {
    for (auto& op : stem_) x = op.forward(x);
    for (std::size_t l = 0; l < arch.size(); ++l) x = layers_[l][static_cast<std::size_t>(arch[l])].forward(x);
    return classifier_->forward(head_->forward(x).mean({2, 3}));
  }

  std::vector<torch::nn::BatchNorm2dImpl*> path_batch_norms(std::span<const int> arch) {
    std::vector<torch::nn::BatchNorm2dImpl*> out;
    auto collect = [&](const std::shared_ptr<torch::nn::Module>& m) {
      for (const auto& sub : m->modules(/*include_self=*/true))
        if (auto* bn = sub->template as<torch::nn::BatchNorm2d>()) out.push_back(bn);
    };
    for (auto& op : stem_) collect(op.ptr());
    for (std::size_t l = 0; l < arch.size(); ++l) collect(layers_[l][static_cast<std::size_t>(arch[l])].ptr());
    collect(head_.ptr());
    return out;
  }

  // NHWC floats from the batcher, as the NCHW tensor torch::nn wants, on the device.
  torch::Tensor images(const pcnas::data::batch_view& b) const {
    return torch::from_blob(const_cast<float*>(b.images.data()),
                            {static_cast<std::int64_t>(b.size), static_cast<std::int64_t>(b.height),
                             static_cast<std::int64_t>(b.width), static_cast<std::int64_t>(b.channels)})
        .permute({0, 3, 1, 2})
        .to(options_.device, /*non_blocking=*/false, /*copy=*/true)
        .contiguous();
  }
  torch::Tensor labels(const pcnas::data::batch_view& b) const {
    return torch::from_blob(const_cast<std::uint8_t*>(b.labels.data()), {static_cast<std::int64_t>(b.size)}, torch::kUInt8)
        .to(options_.device, torch::kLong);
  }
  void check(std::span<const int> arch) const {
    if (arch.size() != Space::num_layers)
      throw std::invalid_argument("module_supernet: an architecture has " + std::to_string(Space::num_layers) +
                                  " choices; got " + std::to_string(arch.size()));
    for (std::size_t l = 0; l < arch.size(); ++l)
      if (arch[l] < 0 || static_cast<std::size_t>(arch[l]) >= Space::num_choices[l])
        throw std::out_of_range("module_supernet: choice " + std::to_string(arch[l]) + " of layer " + std::to_string(l) +
                                " is not in [0, " + std::to_string(Space::num_choices[l]) + ")");
  }

  module_supernet_options options_;
  pcnas::data::batcher train_;
  pcnas::data::batcher recalibration_;
  const pcnas::data::dataset* validation_;
  std::shared_ptr<torch::nn::Module> net_ = std::make_shared<torch::nn::Module>();
  std::vector<torch::nn::AnyModule> stem_;
  std::vector<std::vector<torch::nn::AnyModule>> layers_;
  conv_bn head_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace pcnas_torch_example
