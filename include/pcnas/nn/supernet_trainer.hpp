// supernet_trainer<Backend, Space>: a supernet bound to its data — a training stream, a fixed
// set of batches for BN recalibration and a held-out validation subset. It models the search's
// supernet contract (num_layers, num_choices, train_step, recalibrate, evaluate, save, load, and
// the optional evaluate_all), and it is also what trains a single architecture from scratch.
//
// On a device it keeps the host out of the loop: the loss is read every loss_read_interval
// steps, the evaluation data (and, with a backend that gathers, the training set) is uploaded
// once, and evaluate_all runs many evaluations before it reads any result.
#pragma once

#include <pcnas/data/batcher.hpp>
#include <pcnas/io/binary.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/optimizer.hpp>
#include <pcnas/nn/supernet.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <istream>
#include <iterator>
#include <optional>
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
  // Read the training loss from the device every this many steps (k ≥ 1). The steps in between
  // return the mean of the last k read, and a non-finite or exploding loss stops training within
  // k steps (and before any save). 1 reads every step: free on a CPU, a host round trip per step
  // on a GPU. The first step after construction or load() is always read.
  std::size_t loss_read_interval = 1;
  // Keep the recalibration batches and the validation images on the device after their first
  // upload instead of uploading them for every evaluation.
  bool resident_evaluation_data = true;
  // With a backend that gathers (backend::has_gather) and no augmentation: upload the training
  // set once and assemble each batch on the device, so that only its row numbers travel.
  bool resident_training_data = true;
  // evaluate_all keeps each layer's outputs on the recalibration and validation batches, so
  // that the next path skips the layers it shares with the last one, up to this many bytes
  // (the levels nearest the input first; 0 keeps nothing).
  std::size_t kept_outputs_bytes = std::size_t{1} << 30;
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
        net_(b, {.seed = o.seed, .bn = o.bn}), train_loss_(b, o.loss), sgd_(o.sgd),
        train_(train, {.batch_size = o.batch_size, .seed = o.seed, .mode = data::batch_mode::train, .augment = o.augment}),
        recalibration_(train, {.batch_size = o.batch_size, .seed = o.seed ^ 0x5ca1ab1eULL, .mode = data::batch_mode::train}),
        validation_(&validation), labels_(b.allocate_labels(static_cast<backend::index>(
                                      std::max(o.batch_size, o.eval_batch_size)))),
        rows_(b.allocate_labels(static_cast<backend::index>(o.batch_size))) {}

  std::size_t num_layers() const noexcept { return Space::num_layers; }
  std::size_t num_choices(std::size_t layer) const { return Space::num_choices.at(layer); }

  /// One SGD step on the next training batch through `arch`; returns the mean loss of the last
  /// steps read (every step with loss_read_interval 1).
  double train_step(std::span<const int> arch, double learning_rate) {
    B& b = *backend_;
    kept_ = {};
    auto x = training_batch();
    auto logits = net_.forward(ctx_, std::move(x), arch, mode::train);
    train_loss_.forward(b, logits, labels_);
    auto dlogits = train_loss_.backward(ctx_, logits, labels_);
    logits.reset();
    net_.backward(ctx_, std::move(dlogits), arch);
    const auto params = net_.parameters(arch);
    sgd_.step(b, params, learning_rate);
    ++steps_;
    ++unread_steps_;
    last_rate_ = learning_rate;
    if (!have_loss_ || unread_steps_ >= options_.loss_read_interval) read_loss();
    return last_loss_;
  }

  /// Steps trained since the loss was last read.
  std::size_t unread_steps() const noexcept { return unread_steps_; }

  /// BN statistics of `arch`: reset, then the cumulative average over the same fixed training
  /// batches every time (so that candidates are compared on equal terms).
  void recalibrate(std::span<const int> arch) {
    kept_ = {};
    net_.reset_running_stats(*backend_, arch);
    if (options_.resident_evaluation_data) {
      make_evaluation_data_resident();
      for (const auto& x : resident_recalibration_) (void)net_.forward(ctx_, x, arch, mode::recalibrate);
      return;
    }
    recalibration_.seek({0, 0});
    for (std::size_t k = 0; k < options_.recalibration_batches; ++k)
      (void)net_.forward(ctx_, upload(recalibration_.next()), arch, mode::recalibrate);
  }

  /// Accuracy of `arch` on the first validation_images of the held-out split.
  double evaluate(std::span<const int> arch) {
    if (!options_.resident_evaluation_data) return evaluate_on(arch, *validation_, options_.validation_images);
    validate_into(0, arch);
    return eval_losses_[0].read(*backend_).accuracy();
  }

  /// evaluate() of each architecture (after recalibrate() of it when asked), issued back to back:
  /// no result is read until the last evaluation has been issued, so a device never waits for
  /// the host in between. Layer by layer, the layers an architecture shares at its start with
  /// the one evaluated before it (in this call or the last, when nothing changed the network
  /// since) are not run again: a layer's batch-norm statistics and outputs depend only on the
  /// choices up to it, so their kept outputs are what running them again would give. The
  /// results and the state left behind are the one-at-a-time calls', bit for bit. The outputs
  /// are kept until the next training step, recalibrate(), load() or net().
  std::vector<double> evaluate_all(std::span<const std::vector<int>> archs, bool recalibrate_first) {
    std::vector<double> accuracies;
    accuracies.reserve(archs.size());
    if (!options_.resident_evaluation_data) {
      for (const auto& a : archs) {
        if (recalibrate_first) recalibrate(a);
        accuracies.push_back(evaluate(a));
      }
      return accuracies;
    }
    B& b = *backend_;
    make_evaluation_data_resident();
    constexpr std::size_t L = Space::num_layers;
    if (!kept_.valid || kept_.recalibrated != recalibrate_first) kept_ = {};
    kept_.levels.resize(L + 1);
    // One piece (stem, layer or head) over a level: its statistics first, then the outputs.
    auto run = [&](const kept_level& in, kept_level& out, auto&& op, auto&& reset) {
      kept_level next;
      if (recalibrate_first) {
        reset();
        for (const auto& x : in.recalibration) next.recalibration.push_back(op(x, mode::recalibrate));
      }
      for (const auto& x : in.validation) next.validation.push_back(op(x, mode::eval));
      out = std::move(next);
    };
    kept_level images;
    images.recalibration = resident_recalibration_;
    for (const auto& batch : resident_validation_) images.validation.push_back(batch.images);
    for (std::size_t i = 0; i < archs.size(); ++i) {
      const std::vector<int>& arch = archs[i];
      net_.check_arch(arch);
      // Levels [0, from] hold this path's outputs already: the stem's and those of the layers
      // it shares with the last path, as far as they were kept.
      const bool have_stem = kept_.valid && kept_.stored > 0;
      std::size_t from = 0;
      if (have_stem)
        while (from + 1 < kept_.stored && from < L && arch[from] == kept_.path[from]) ++from;
      kept_.valid = false;  // until the levels hold this path's outputs (an exception may come)
      // Levels past the memory budget go through two scratch levels instead.
      kept_level scratch[2];
      int last_scratch = 1;
      auto output = [&](std::size_t d) -> kept_level& {
        return d < kept_.stored ? kept_.levels[d] : scratch[last_scratch ^= 1];
      };
      auto account = [&](std::size_t d) {
        if (d >= kept_.stored) return;
        const std::size_t bytes = level_bytes(kept_.levels[d]);
        if (kept_.bytes[d] == 0) kept_.bytes[d] = bytes;
        std::size_t total = 0;
        for (std::size_t e = 0; e <= d; ++e) total += kept_.bytes[e];
        if (total > options_.kept_outputs_bytes) kept_.stored = d;  // used once more, then dropped
      };
      const kept_level* in = &kept_.levels[from];
      if (!have_stem) {
        kept_level& out = output(0);
        run(images, out, [&](const activation<B>& x, mode m) { return net_.forward_stem(ctx_, x, m); },
            [&] { net_.reset_stem_running_stats(b); });
        account(0);
        in = &out;
      }
      for (std::size_t l = from; l < L; ++l) {
        const auto c = static_cast<std::size_t>(arch[l]);
        kept_level& out = output(l + 1);
        run(*in, out, [&](const activation<B>& x, mode m) { return net_.forward_layer(ctx_, x, l, c, m); },
            [&] { net_.reset_layer_running_stats(b, l, c); });
        account(l + 1);
        in = &out;
      }
      kept_level logits;
      run(*in, logits, [&](const activation<B>& x, mode m) { return net_.forward_head(ctx_, x, m); },
          [&] { net_.reset_head_running_stats(b); });
      for (std::size_t d = kept_.stored; d <= L; ++d) kept_.levels[d] = {};
      kept_.path = arch;
      kept_.recalibrated = recalibrate_first;
      kept_.valid = true;
      auto& loss = eval_loss(i);
      loss.reset(b);
      for (std::size_t v = 0; v < logits.validation.size(); ++v)
        loss.forward(b, logits.validation[v], resident_validation_[v].labels);
    }
    for (std::size_t i = 0; i < archs.size(); ++i) accuracies.push_back(eval_losses_[i].read(b).accuracy());
    return accuracies;
  }

  /// Accuracy and mean loss of `arch` on up to `max_images` of any data set (e.g. the test set,
  /// for reporting a retrained model; the search never calls this with it).
  loss_stats evaluate_stats(std::span<const int> arch, const data::dataset& ds, std::size_t max_images) {
    B& b = *backend_;
    data::batcher it(ds, {.batch_size = options_.eval_batch_size, .mode = data::batch_mode::eval});
    const std::size_t total = std::min(max_images == 0 ? ds.count : max_images, ds.count);
    auto& loss = eval_loss(0);
    loss.reset(b);
    for (std::size_t seen = 0; seen < total;) {
      auto batch = it.next();
      if (batch.size > total - seen) shrink(batch, total - seen);
      auto logits = net_.forward(ctx_, upload(batch), arch, mode::eval);
      loss.forward(b, logits, labels_);
      seen += batch.size;
    }
    return loss.read(b);
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
    // A state is never saved with an unread loss: a diverged network must not become a
    // checkpoint that a resumed search would continue from.
    if (unread_steps_ > 0) read_loss();
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
    kept_ = {};
    steps_ = steps;
    train_loss_.reset(*backend_);
    unread_steps_ = 0;
    have_loss_ = false;
  }

  supernet<B, Space>& net() noexcept {
    kept_ = {};  // the caller may change the network
    return net_;
  }
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
    if (o.loss_read_interval == 0)
      throw std::invalid_argument("the loss read interval must be at least 1 step");
    if (val.count == 0) throw std::invalid_argument("the validation split is empty");
    return o;
  }

  // Reads the loss of the steps since the last read, and stops training if it diverged.
  // (const: save() flushes it; the loss totals are bookkeeping, not state.)
  void read_loss() const {
    B& b = *backend_;
    const double loss = train_loss_.read(b).mean_loss();
    const std::size_t window = unread_steps_;
    train_loss_.reset(b);
    unread_steps_ = 0;
    const double uniform_guess = std::log(static_cast<double>(Space::num_classes));
    const double limit = options_.divergence_factor * uniform_guess;
    if (!std::isfinite(loss) || (options_.divergence_factor > 0 && loss > limit)) {
      char text[96];
      std::snprintf(text, sizeof text, "%.6g", loss);
      char bound[160] = "";
      if (std::isfinite(loss))
        std::snprintf(bound, sizeof bound, ", more than %g times that of a uniform guess (%.3f)",
                      options_.divergence_factor, uniform_guess);
      const std::string steps = window > 1 ? "steps " + std::to_string(steps_ - window + 1) + "-" + std::to_string(steps_)
                                           : "step " + std::to_string(steps_);
      throw training_diverged("training diverged at " + steps + " (epoch " + std::to_string(last_batch_.epoch + 1) +
                              ", batch " + std::to_string(last_batch_.index + 1) + ", learning rate " +
                              std::to_string(last_rate_) + "): the " + (window > 1 ? "mean loss" : "loss") + " is " +
                              text + bound + "; lower the learning rate");
    }
    last_loss_ = loss;
    have_loss_ = true;
  }

  // The next training batch on the device; its labels go to labels_.
  activation<B> training_batch() {
    if constexpr (backend::has_gather<B>) {
      if (options_.resident_training_data && !options_.augment.enabled()) {
        B& b = *backend_;
        const auto batch = train_.next_indices();
        last_batch_ = batch.position;
        if (!resident_train_) resident_train_ = keep_dataset(train_.data());
        rows_host_.assign(batch.indices.begin(), batch.indices.end());
        const auto n = static_cast<backend::index>(batch.size);
        b.upload_labels(std::span<const std::int32_t>(rows_host_), rows_);
        const auto& in = Space::input_shape;
        activation<B> x = ctx_.acquire(act_shape{n, in.height, in.width, in.channels});
        b.gather_rows(n, resident_train_->image_size, resident_train_->images, rows_, x.tensor());
        b.gather_labels(n, resident_train_->labels, rows_, labels_);
        return x;
      }
    }
    const auto batch = train_.next();
    last_batch_ = batch.position;
    return upload(batch);
  }

  // The recalibration batches and the validation images, uploaded on first use and kept.
  void make_evaluation_data_resident() {
    if (!resident_ready_) {
      recalibration_.seek({0, 0});
      for (std::size_t k = 0; k < options_.recalibration_batches; ++k)
        resident_recalibration_.push_back(keep_images(recalibration_.next()));
      data::batcher it(*validation_, {.batch_size = options_.eval_batch_size, .mode = data::batch_mode::eval});
      const std::size_t total = std::min(options_.validation_images == 0 ? validation_->count : options_.validation_images,
                                         validation_->count);
      for (std::size_t seen = 0; seen < total;) {
        auto batch = it.next();
        if (batch.size > total - seen) shrink(batch, total - seen);
        resident_validation_.push_back(keep(batch));
        seen += batch.size;
      }
      resident_ready_ = true;
    }
  }

  // One arch's accuracy on the resident validation images, accumulated in eval_losses_[slot].
  void validate_into(std::size_t slot, std::span<const int> arch) {
    make_evaluation_data_resident();
    B& b = *backend_;
    auto& loss = eval_loss(slot);
    loss.reset(b);
    for (const auto& batch : resident_validation_) {
      auto logits = net_.forward(ctx_, batch.images, arch, mode::eval);
      loss.forward(b, logits, batch.labels);
    }
  }

  cross_entropy<B>& eval_loss(std::size_t slot) {
    while (eval_losses_.size() <= slot) eval_losses_.emplace_back(*backend_, options_.loss);
    return eval_losses_[slot];
  }

  // evaluate_all's outputs of the stem (levels[0]) and of each layer (levels[l + 1]) along
  // `path`, for the recalibration and the validation batches.
  struct kept_level {
    std::vector<activation<B>> recalibration, validation;
  };
  struct kept_outputs {
    std::vector<kept_level> levels;
    std::array<std::size_t, Space::num_layers + 1> bytes{};  // each level's size, once known
    std::size_t stored = Space::num_layers + 1;              // levels [0, stored) are kept
    std::vector<int> path;
    bool recalibrated = false;
    bool valid = false;
  };
  static std::size_t level_bytes(const kept_level& level) {
    std::size_t n = 0;
    for (const auto* list : {&level.recalibration, &level.validation})
      for (const auto& x : *list) n += static_cast<std::size_t>(x.shape().numel());
    return n * sizeof(value_type);
  }

  // A batch uploaded once and kept: images, and labels sized exactly.
  struct resident_batch {
    activation<B> images;
    backend::label_tensor_t<B> labels;
  };
  activation<B> keep_images(const data::batch_view& batch) {
    activation<B> x = resident_pool_.acquire(shape_of(batch));
    upload_images(batch, x);
    return x;
  }
  resident_batch keep(const data::batch_view& batch) {
    resident_batch r{keep_images(batch), backend_->allocate_labels(static_cast<backend::index>(batch.size))};
    label_host_.assign(batch.labels.begin(), batch.labels.end());
    backend_->upload_labels(std::span<const std::int32_t>(label_host_), r.labels);
    return r;
  }

  // A whole data set on the device, for batches gathered there.
  struct resident_dataset {
    backend::tensor_t<B> images;
    backend::label_tensor_t<B> labels;
    backend::index image_size = 0;
  };
  resident_dataset keep_dataset(const data::dataset& ds) {
    B& b = *backend_;
    resident_dataset r;
    r.image_size = static_cast<backend::index>(ds.image_size());
    r.images = b.allocate(static_cast<backend::index>(ds.images.size()));
    if constexpr (std::is_same_v<value_type, float>) {
      b.upload(std::span<const float>(ds.images), r.images);
    } else {
      std::vector<value_type> v(ds.images.begin(), ds.images.end());
      b.upload(std::span<const value_type>(v), r.images);
    }
    std::vector<std::int32_t> labels(ds.labels.begin(), ds.labels.end());
    r.labels = b.allocate_labels(static_cast<backend::index>(ds.count));
    b.upload_labels(std::span<const std::int32_t>(labels), r.labels);
    return r;
  }

  // The device-side copy of a host batch (images NHWC, labels int32 into labels_).
  static act_shape shape_of(const data::batch_view& batch) {
    return {static_cast<backend::index>(batch.size), static_cast<backend::index>(batch.height),
            static_cast<backend::index>(batch.width), static_cast<backend::index>(batch.channels)};
  }
  activation<B> upload(const data::batch_view& batch) {
    activation<B> x = ctx_.acquire(shape_of(batch));
    upload_images(batch, x);
    label_host_.assign(batch.labels.begin(), batch.labels.end());
    backend_->upload_labels(std::span<const std::int32_t>(label_host_), labels_);
    return x;
  }
  void upload_images(const data::batch_view& batch, activation<B>& x) {
    if constexpr (std::is_same_v<value_type, float>) {
      backend_->upload(batch.images, x.tensor());
    } else {
      std::vector<value_type> v(batch.images.begin(), batch.images.end());
      backend_->upload(std::span<const value_type>(v), x.tensor());
    }
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
  mutable cross_entropy<B> train_loss_;    // the steps since the last read, summed on the device
  std::vector<cross_entropy<B>> eval_losses_;  // one per evaluation in flight (evaluate_all)
  sgd<B> sgd_;
  data::batcher train_;
  data::batcher recalibration_;
  const data::dataset* validation_;
  backend::label_tensor_t<B> labels_;
  std::vector<std::int32_t> label_host_;
  std::uint64_t steps_ = 0;
  // Deferred loss reads (mutable: save() reads what is pending).
  mutable std::size_t unread_steps_ = 0;
  mutable double last_loss_ = 0.0;
  mutable bool have_loss_ = false;
  double last_rate_ = 0.0;
  data::batch_position last_batch_{};
  // Data kept on the device, in a pool of its own so that it never holds tensors the steps'
  // activations would reuse (declared before the data, so it outlives them).
  tensor_pool<B> resident_pool_{*backend_};
  bool resident_ready_ = false;
  std::vector<activation<B>> resident_recalibration_;
  std::vector<resident_batch> resident_validation_;
  std::optional<resident_dataset> resident_train_;
  backend::label_tensor_t<B> rows_;  // the rows of the next training batch (resident training data)
  kept_outputs kept_;
  std::vector<std::int32_t> rows_host_;
};

}  // namespace pcnas::nn
