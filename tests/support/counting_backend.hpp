// The reference backend with counters on what costs a device its speed: allocations, uploads,
// downloads, optimizer calls, and the host waits (a download or synchronize() issued while
// computation is queued, which on a GPU stalls the host until the queue drains). With
// `device_loop` it also offers the contract's optional device-loop members, so that tests can
// see the library take them.
#pragma once

#include <pcnas/testing/naive_backend.hpp>

#include <cstdint>
#include <span>

namespace user_counting {

struct counts {
  long allocations = 0;     // allocate and allocate_labels
  long image_uploads = 0;   // upload() of values
  long label_uploads = 0;   // upload_labels()
  long downloads = 0;
  long waits = 0;           // downloads and synchronizes with computation queued before them
  long sgd_calls = 0;       // sgd_update and sgd_update_many
};

template <class T, bool DeviceLoop = false>
class backend : public pcnas::testing::naive_backend<T> {
  using base = pcnas::testing::naive_backend<T>;

 public:
  using typename base::label_tensor;
  using typename base::tensor;
  using index = pcnas::backend::index;

  counts count;

  tensor allocate(index n) {
    ++count.allocations;
    return base::allocate(n);
  }
  label_tensor allocate_labels(index n) {
    ++count.allocations;
    return base::allocate_labels(n);
  }
  void fill(index n, T v, tensor& t) {
    ++this->calls;  // device work like any other call
    base::fill(n, v, t);
  }
  void copy(index n, const tensor& src, tensor& dst) {
    ++this->calls;
    base::copy(n, src, dst);
  }
  void upload(std::span<const T> src, tensor& dst) {
    ++count.image_uploads;
    base::upload(src, dst);
  }
  void upload_labels(std::span<const std::int32_t> src, label_tensor& dst) {
    ++count.label_uploads;
    base::upload_labels(src, dst);
  }
  void download(const tensor& src, std::span<T> dst) {
    ++count.downloads;
    wait();
    base::download(src, dst);
  }
  void synchronize() { wait(); }
  void sgd_update(const pcnas::backend::sgd_desc& d, tensor& w, const tensor& g, tensor& m) {
    ++count.sgd_calls;
    base::sgd_update(d, w, g, m);
  }

  // The optional members, only with DeviceLoop: each as the required calls it stands for.
  void sgd_update_many(const pcnas::backend::sgd_step& s, std::span<const pcnas::backend::sgd_item<tensor>> items)
    requires DeviceLoop
  {
    ++count.sgd_calls;
    for (const auto& it : items)
      base::sgd_update({it.size, s.learning_rate, s.momentum, it.decay ? s.weight_decay : 0.0, s.nesterov}, *it.value,
                       *it.grad, *it.momentum);
  }
  void gather_rows(index rows, index row, const tensor& src, const label_tensor& which, tensor& dst)
    requires DeviceLoop
  {
    ++this->calls;
    for (index r = 0; r < rows; ++r)
      for (index i = 0; i < row; ++i) dst.data[r * row + i] = src.data[which.data[r] * row + i];
  }
  void gather_labels(index rows, const label_tensor& src, const label_tensor& which, label_tensor& dst)
    requires DeviceLoop
  {
    ++this->calls;
    for (index r = 0; r < rows; ++r) dst.data[r] = src.data[which.data[r]];
  }

 private:
  // Every computing call of the reference backend counts in `calls`: one made since the last
  // wait means this one waits.
  void wait() {
    if (this->calls != calls_at_last_wait_) ++count.waits;
    calls_at_last_wait_ = this->calls;
  }
  long calls_at_last_wait_ = 0;
};

}  // namespace user_counting
