// Where activations live: a pool of backend tensors reused from step to step, activation
// handles that return their tensor to the pool when the last reference goes, and the context
// (backend + pool) that every module call receives.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace pcnas::nn {

using backend::act_shape;
using backend::index;

// train: batch statistics, running averages move by the BN momentum, activations are kept for
//        backward. eval: running statistics, nothing is kept. recalibrate: batch statistics,
//        running statistics become the cumulative average of the batches seen since
//        reset_running_stats(), nothing is kept, no weight changes.
enum class mode { train, eval, recalibrate };

template <class B>
class tensor_pool;

// A tensor lent by a pool; it goes back to the pool when destroyed.
template <class B>
class pooled_tensor {
 public:
  using tensor_type = backend::tensor_t<B>;

  pooled_tensor() = default;
  pooled_tensor(const pooled_tensor&) = delete;
  pooled_tensor& operator=(const pooled_tensor&) = delete;
  pooled_tensor(pooled_tensor&& o) noexcept
      : tensor_(std::move(o.tensor_)), capacity_(std::exchange(o.capacity_, 0)),
        pool_(std::exchange(o.pool_, nullptr)) {}
  pooled_tensor& operator=(pooled_tensor&& o) noexcept {
    if (this != &o) {
      release();
      tensor_ = std::move(o.tensor_);
      capacity_ = std::exchange(o.capacity_, 0);
      pool_ = std::exchange(o.pool_, nullptr);
    }
    return *this;
  }
  ~pooled_tensor() { release(); }

  tensor_type& get() noexcept { return tensor_; }
  const tensor_type& get() const noexcept { return tensor_; }
  index capacity() const noexcept { return capacity_; }

  void release() noexcept {
    if (pool_ != nullptr) pool_->give_back(std::move(tensor_), capacity_);
    pool_ = nullptr;
    capacity_ = 0;
  }

 private:
  friend class tensor_pool<B>;
  pooled_tensor(tensor_type t, index capacity, tensor_pool<B>* pool)
      : tensor_(std::move(t)), capacity_(capacity), pool_(pool) {}

  tensor_type tensor_{};
  index capacity_ = 0;
  tensor_pool<B>* pool_ = nullptr;
};

// An NHWC activation: a shared handle on a pooled tensor plus its logical shape. Copies share
// the tensor; it returns to the pool when the last copy goes. Modules keep copies of what their
// backward needs only in mode::train and drop them in backward(), so the ops that are not on the
// sampled path hold no activations at all.
template <class B>
class activation {
 public:
  activation() = default;
  activation(pooled_tensor<B> t, act_shape s)
      : data_(std::make_shared<pooled_tensor<B>>(std::move(t))), shape_(s) {}

  const act_shape& shape() const noexcept { return shape_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  // True when no other handle shares the tensor, so it may be overwritten in place.
  bool unique() const noexcept { return data_ != nullptr && data_.use_count() == 1; }

  backend::tensor_t<B>& tensor() {
    check();
    return data_->get();
  }
  const backend::tensor_t<B>& tensor() const {
    check();
    return data_->get();
  }
  void reset() noexcept { data_.reset(); }
  // The same tensor seen with another shape of the same size (NHWC [n,1,1,c] ↔ [n,h,w,c/hw]).
  activation reshaped(act_shape s) const {
    if (s.numel() != shape_.numel())
      throw std::invalid_argument("pcnas::nn::activation::reshaped: element counts differ");
    activation a = *this;
    a.shape_ = s;
    return a;
  }

 private:
  void check() const {
    if (!data_) throw std::logic_error("pcnas::nn::activation: the activation is empty");
  }
  std::shared_ptr<pooled_tensor<B>> data_;
  act_shape shape_{};
};

// Idle tensors keyed by capacity. A request takes the smallest idle tensor that holds it
// without wasting more than half; everything allocated (idle and in use) is kept within twice
// the peak in use, so the pool settles at the working set of the largest path seen plus at most
// as much again.
template <class B>
class tensor_pool {
 public:
  explicit tensor_pool(B& b) : backend_(&b) {}
  tensor_pool(const tensor_pool&) = delete;
  tensor_pool& operator=(const tensor_pool&) = delete;
  ~tensor_pool() = default;

  pooled_tensor<B> acquire(index n) {
    if (n <= 0) n = 1;
    auto it = idle_.lower_bound(n);
    if (it != idle_.end() && it->first <= 2 * n) {
      const index cap = it->first;
      backend::tensor_t<B> t = std::move(it->second);
      idle_.erase(it);
      idle_elements_ -= cap;
      note_in_use(cap);
      return pooled_tensor<B>(std::move(t), cap, this);
    }
    // Make room before growing: drop the smallest idle tensors first, which are the least
    // likely to fit later requests.
    const index limit = 2 * std::max(peak_in_use_, in_use_elements_ + n);
    while (!idle_.empty() && idle_elements_ + in_use_elements_ + n > limit) {
      idle_elements_ -= idle_.begin()->first;
      idle_.erase(idle_.begin());
    }
    backend::tensor_t<B> t = backend_->allocate(n);
    note_in_use(n);
    return pooled_tensor<B>(std::move(t), n, this);
  }

  activation<B> acquire(act_shape s) { return activation<B>(acquire(s.numel()), s); }

  // Frees every idle tensor.
  void trim() {
    idle_.clear();
    idle_elements_ = 0;
  }
  index in_use_elements() const noexcept { return in_use_elements_; }
  index idle_elements() const noexcept { return idle_elements_; }
  index peak_in_use_elements() const noexcept { return peak_in_use_; }

 private:
  friend class pooled_tensor<B>;
  void note_in_use(index n) {
    in_use_elements_ += n;
    if (in_use_elements_ > peak_in_use_) peak_in_use_ = in_use_elements_;
  }
  void give_back(backend::tensor_t<B>&& t, index capacity) noexcept {
    in_use_elements_ -= capacity;
    try {
      idle_.emplace(capacity, std::move(t));
      idle_elements_ += capacity;
    } catch (...) {
      // Out of memory for the map node: the tensor is simply freed.
    }
  }

  B* backend_;
  std::multimap<index, backend::tensor_t<B>> idle_;
  index idle_elements_ = 0;
  index in_use_elements_ = 0;
  index peak_in_use_ = 0;
};

// What every module call receives: the backend (with its stream) and the activation pool.
// The context must outlive every activation taken from it.
template <class B>
class context {
 public:
  explicit context(B& b) : backend_(&b), pool_(b) {}
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  B& backend() noexcept { return *backend_; }
  tensor_pool<B>& pool() noexcept { return pool_; }
  activation<B> acquire(act_shape s) { return pool_.acquire(s); }

 private:
  B* backend_;
  tensor_pool<B> pool_;
};

namespace detail {

// Built with += rather than "literal" + std::string, which trips a false -Wrestrict in GCC 12.
inline std::string shape_text(const act_shape& s) {
  std::string t = "[";
  for (index v : {s.n, s.h, s.w, s.c}) {
    if (t.size() > 1) t += ", ";
    t += std::to_string(v);
  }
  t += "]";
  return t;
}

inline void check_input(const char* module, const act_shape& got, index h, index w, index c) {
  if (got.h == h && got.w == w && got.c == c && got.n > 0) return;
  std::string m = "pcnas::nn::";
  m += module;
  m += ": the input has shape (NHWC) ";
  m += shape_text(got);
  m += " but the module was built for ";
  m += shape_text({0, h, w, c});
  m.replace(m.rfind("[0,"), 3, "[n,");
  throw std::invalid_argument(m);
}

}  // namespace detail

}  // namespace pcnas::nn
