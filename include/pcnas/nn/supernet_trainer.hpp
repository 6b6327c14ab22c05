// supernet_trainer<Backend, Space>: a supernet bound to its data — a training stream, a fixed
// set of batches for BN recalibration and a held-out validation subset. It models the search's
// supernet contract (num_layers, num_choices, train_step, recalibrate, evaluate, save, load), and
// it is also what trains a single architecture from scratch.
#pragma once

#include <pcnas/data/batcher.hpp>
#include <pcnas/io/binary.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/optimizer.hpp>
#include <pcnas/nn/supernet.hpp>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <istream>
#include <iterator>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::nn {

struct trainer_options {
  std::size_t batch_size = 128;
  std::size_t eval_batch_size = 500;
  std::size_t recalibration_batches = 4;   // training batches that set a path's BN statistics
  std::size_t validation_images = 2000;    // of the held-out split, for evaluate()
  std::uint64_t seed = 0;                  // weights, shuffling, augmentation
  data::augmentation augment{};
  cross_entropy_options loss{};
  sgd_options sgd{};
  batch_norm_options bn{};
  // A mean loss above this many times that of a uniform guess (ln of the class count) stops
  // training as diverged: an exploding loss otherwise settles into a dead network that predicts
  // one class, and the run would end "successfully" at chance accuracy. 0: only a non-finite
  // loss stops it.
  double divergence_factor = 10.0;
};

/// Training stopped because the loss became non-finite or exploded.
class training_diverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A damaged, truncated or foreign state file.
using state_error = io::format_error;

template <class B, class Space>
class supernet_trainer {
 public:
  using value_type = backend::value_type_t<B>;

  /// `train` and `validation` must outlive the trainer; validation is never the test set.
  supernet_trainer(B& b, const data::dataset& train, const data::dataset& validation, trainer_options o = {})
      : backend_(&b), options_(check(o, train, validation)), ctx_(b),
        net_(b, {.seed = o.seed, .bn = o.bn}), loss_(b, o.loss), sgd_(o.sgd),
        train_(train, {.batch_size = o.batch_size, .seed = o.seed, .mode = data::batch_mode::train, .augment = o.augment}),
        recalibration_(train, {.batch_size = o.batch_size, .seed = o.seed ^ 0x5ca1ab1eULL, .mode = data::batch_mode::train}),
        validation_(&validation), labels_(b.allocate_labels(static_cast<backend::index>(
                                      std::max(o.batch_size, o.eval_batch_size)))) {}

  std::size_t num_layers() const noexcept { return Space::num_layers; }
  std::size_t num_choices(std::size_t layer) const { return Space::num_choices.at(layer); }

  /// One SGD step on the next training batch through `arch`; returns the mean loss.
  double train_step(std::span<const int> arch, double learning_rate) {
    B& b = *backend_;
    const auto batch = train_.next();
    auto logits = net_.forward(ctx_, upload(batch), arch, mode::train);
    loss_.reset(b);
    loss_.forward(b, logits, labels_);
    auto dlogits = loss_.backward(ctx_, logits, labels_);
    logits.reset();
    net_.backward(ctx_, std::move(dlogits), arch);
    const auto params = net_.parameters(arch);
    sgd_.step(b, params, learning_rate);
    const double loss = loss_.read(b).mean_loss();
    const double uniform_guess = std::log(static_cast<double>(Space::num_classes));
    const double limit = options_.divergence_factor * uniform_guess;
    if (!std::isfinite(loss) || (options_.divergence_factor > 0 && loss > limit)) {
      char text[96];
      std::snprintf(text, sizeof text, "%.6g", loss);
      char bound[160] = "";
      if (std::isfinite(loss))
        std::snprintf(bound, sizeof bound, ", more than %g times that of a uniform guess (%.3f)",
                      options_.divergence_factor, uniform_guess);
      throw training_diverged("training diverged at step " + std::to_string(steps_ + 1) + " (epoch " +
                              std::to_string(batch.position.epoch + 1) + ", batch " +
                              std::to_string(batch.position.index + 1) + ", learning rate " +
                              std::to_string(learning_rate) + "): the loss is " + text + bound +
                              "; lower the learning rate");
    }
    ++steps_;
    return loss;
  }

  /// BN statistics of `arch`: reset, then the cumulative average over the same fixed training
  /// batches every time (so that candidates are compared on equal terms).
  void recalibrate(std::span<const int> arch) {
    net_.reset_running_stats(*backend_, arch);
    recalibration_.seek({0, 0});
    for (std::size_t k = 0; k < options_.recalibration_batches; ++k)
      (void)net_.forward(ctx_, upload(recalibration_.next()), arch, mode::recalibrate);
  }

  /// Accuracy of `arch` on the first validation_images of the held-out split.
  double evaluate(std::span<const int> arch) {
    return evaluate_on(arch, *validation_, options_.validation_images);
  }

  /// Accuracy and mean loss of `arch` on up to `max_images` of any data set (e.g. the test set,
  /// for reporting a retrained model; the search never calls this with it).
  loss_stats evaluate_stats(std::span<const int> arch, const data::dataset& ds, std::size_t max_images) {
    B& b = *backend_;
    data::batcher it(ds, {.batch_size = options_.eval_batch_size, .mode = data::batch_mode::eval});
    const std::size_t total = std::min(max_images == 0 ? ds.count : max_images, ds.count);
    loss_.reset(b);
    for (std::size_t seen = 0; seen < total;) {
      auto batch = it.next();
      if (batch.size > total - seen) shrink(batch, total - seen);
      auto logits = net_.forward(ctx_, upload(batch), arch, mode::eval);
      loss_.forward(b, logits, labels_);
      seen += batch.size;
    }
    return loss_.read(b);
  }
  double evaluate_on(std::span<const int> arch, const data::dataset& ds, std::size_t max_images = 0) {
    return evaluate_stats(arch, ds, max_images).accuracy();
  }

  /// Inference forward passes of `arch` on a validation batch of `batch` images (for timing).
  void forward_only(std::span<const int> arch, std::size_t batch) {
    data::batcher it(*validation_, {.batch_size = batch, .mode = data::batch_mode::eval});
    auto view = it.next();
    (void)net_.forward(ctx_, upload(view), arch, mode::eval);
  }

  /// The whole state: weights, momenta, BN statistics, data-stream position, in the library's
  /// binary frame (io/binary.hpp, magic "PCNASNET"), so that load() refuses a damaged or
  /// foreign file.
  void save(std::ostream& out) const {
    io::byte_writer w;
    save_payload(w);
    const std::string bytes = io::frame(state_frame.magic, state_frame.version, w.payload());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw state_error("", "could not write the supernet state");
  }

  void load(std::istream& in) {
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto r = io::unframe(std::move(bytes), state_frame, "");
    load_payload(r);
    r.expect_end("the supernet state");
  }

  /// The state's fields alone, for a container that frames them itself (a search checkpoint).
  /// Values in little-endian byte order whatever the host's.
  void save_payload(io::byte_writer& w) const {
    w.str(space::space_name<Space>());
    w.u64(options_.seed);
    w.u64(steps_);
    w.u64(train_.position().epoch);
    w.u64(train_.position().index);
    const auto state = save_state<B>(*backend_, net_.all_parameters(), net_.all_buffers(), {.momentum = true});
    w.u64(sizeof(value_type));
    if constexpr (std::is_same_v<value_type, float>) w.floats(state); else w.doubles(state);
  }

  void load_payload(io::byte_reader& r) {
    const std::string space = r.str();
    if (space != space::space_name<Space>())
      r.fail("the supernet state is for space '" + space + "', expected '" + std::string(space::space_name<Space>()) +
             "'");
    const auto seed = r.u64();
    if (seed != options_.seed)
      r.fail("the supernet state was written with seed " + std::to_string(seed) + ", this trainer has seed " +
             std::to_string(options_.seed) + ": its data stream would differ");
    const auto steps = r.u64(), epoch = r.u64(), index = r.u64();
    if (r.u64() != sizeof(value_type)) r.fail("the supernet state holds values of another type");
    std::vector<value_type> state;
    if constexpr (std::is_same_v<value_type, float>) state = r.floats(); else state = r.doubles();
    try {
      load_state<B>(*backend_, net_.all_parameters(), net_.all_buffers(), state, {.momentum = true});
    } catch (const std::invalid_argument& e) {
      r.fail(std::string("the supernet state does not fit this network: ") + e.what());
    }
    train_.seek({epoch, index});
    steps_ = steps;
  }

  supernet<B, Space>& net() noexcept { return net_; }
  const supernet<B, Space>& net() const noexcept { return net_; }
  context<B>& ctx() noexcept { return ctx_; }
  const trainer_options& options() const noexcept { return options_; }
  std::uint64_t steps() const noexcept { return steps_; }
  std::size_t batches_per_epoch() const { return train_.batches_per_epoch(); }

 private:
  // Version 2: values little-endian through io::byte_writer (version 1 wrote the host's order).
  static constexpr io::frame_kind state_frame{
      .magic = "PCNASNET", .version = 2, .what = "pcnas supernet state", .prefix = ""};

  static const trainer_options& check(const trainer_options& o, const data::dataset& train,
                                      const data::dataset& val) {
    const auto& in = Space::input_shape;
    for (const data::dataset* ds : {&train, &val})
      if (ds->height != static_cast<std::size_t>(in.height) || ds->width != static_cast<std::size_t>(in.width) ||
          ds->channels != static_cast<std::size_t>(in.channels) ||
          ds->num_classes != static_cast<std::size_t>(Space::num_classes))
        throw std::invalid_argument("the data (" + std::to_string(ds->channels) + "x" + std::to_string(ds->height) +
                                    "x" + std::to_string(ds->width) + ", " + std::to_string(ds->num_classes) +
                                    " classes) do not fit space '" + std::string(space::space_name<Space>()) + "'");
    if (o.batch_size == 0 || o.eval_batch_size == 0)
      throw std::invalid_argument("batch sizes must be positive");
    if (val.count == 0) throw std::invalid_argument("the validation split is empty");
    return o;
  }

  // The device-side copy of a host batch (images NHWC, labels int32).
  activation<B> upload(const data::batch_view& batch) {
    B& b = *backend_;
    const act_shape s{static_cast<backend::index>(batch.size), static_cast<backend::index>(batch.height),
                      static_cast<backend::index>(batch.width), static_cast<backend::index>(batch.channels)};
    activation<B> x = ctx_.acquire(s);
    if constexpr (std::is_same_v<value_type, float>) {
      b.upload(batch.images, x.tensor());
    } else {
      std::vector<value_type> v(batch.images.begin(), batch.images.end());
      b.upload(std::span<const value_type>(v), x.tensor());
    }
    label_host_.assign(batch.labels.begin(), batch.labels.end());
    b.upload_labels(std::span<const std::int32_t>(label_host_), labels_);
    return x;
  }
  static void shrink(data::batch_view& batch, std::size_t n) {
    const std::size_t per_image = batch.height * batch.width * batch.channels;
    batch.images = batch.images.first(n * per_image);
    batch.labels = batch.labels.first(n);
    batch.size = n;
  }

  B* backend_;
  trainer_options options_;
  mutable context<B> ctx_;
  mutable supernet<B, Space> net_;
  cross_entropy<B> loss_;
  sgd<B> sgd_;
  data::batcher train_;
  data::batcher recalibration_;
  const data::dataset* validation_;
  backend::label_tensor_t<B> labels_;
  std::vector<std::int32_t> label_host_;
  std::uint64_t steps_ = 0;
};

}  // namespace pcnas::nn
