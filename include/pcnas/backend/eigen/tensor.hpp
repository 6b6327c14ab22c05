// Tensors of the Eigen backend: 64-byte-aligned host buffers of float32, move-only.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <cstdint>
#include <utility>
#include <vector>

namespace pcnas::backend::eigen {

class tensor {
 public:
  tensor() = default;
  explicit tensor(index n) : data_(detail::allocate_floats(n)), size_(n) {}
  tensor(tensor&& o) noexcept : data_(std::move(o.data_)), size_(std::exchange(o.size_, 0)) {}
  tensor& operator=(tensor&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }
  tensor(const tensor&) = delete;
  tensor& operator=(const tensor&) = delete;

  float* data() noexcept { return data_.get(); }
  const float* data() const noexcept { return data_.get(); }
  index size() const noexcept { return size_; }

 private:
  detail::aligned_floats data_;
  index size_ = 0;
};

struct label_tensor {
  std::vector<std::int32_t> data;
};

}  // namespace pcnas::backend::eigen
