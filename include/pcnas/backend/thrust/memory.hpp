// Memory of the Thrust backend: a caching allocator over thrust::device_malloc (size buckets,
// blocks kept until the allocator is trimmed or destroyed), and the tensors it lends out.
// A cudaFree synchronises the whole device, so a search loop must not free: once a path has
// run, running it again takes every block from the cache.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <thrust/device_free.h>
#include <thrust/device_malloc.h>
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace pcnas::backend::thrust {

// What the allocator has done since it was made; tests read it to prove that a repeated path
// allocates nothing.
struct allocation_stats {
  std::size_t device_allocations = 0;  // blocks obtained from the device system
  std::size_t device_bytes = 0;        // their total size (all still held until trim())
  std::size_t reuses = 0;              // requests served from the cache
  std::size_t in_use = 0;              // blocks lent out now
};

class caching_allocator {
 public:
  caching_allocator() = default;
  caching_allocator(const caching_allocator&) = delete;
  caching_allocator& operator=(const caching_allocator&) = delete;
  ~caching_allocator() { trim(); }

  // Size classes: powers of two split into four steps (at most 19 % slack), 256 bytes at least,
  // so that activations of similar shapes share blocks.
  static std::size_t bucket(std::size_t bytes) noexcept {
    if (bytes <= 256) return 256;
    const std::size_t p = std::bit_floor(bytes - 1);  // bytes in (p, 2p]
    const std::size_t quarter = p / 4;
    return p + quarter * ((bytes - p + quarter - 1) / quarter);
  }

  void* acquire(std::size_t bytes) {
    const std::size_t size = bucket(bytes);
    std::lock_guard lock(mutex_);
    auto& free_list = free_[size];
    ++stats_.in_use;
    if (!free_list.empty()) {
      void* p = free_list.back();
      free_list.pop_back();
      ++stats_.reuses;
      return p;
    }
    ::thrust::device_ptr<char> p;
    try {
      p = ::thrust::device_malloc<char>(size);
    } catch (...) {
      --stats_.in_use;
      throw;
    }
    ++stats_.device_allocations;
    stats_.device_bytes += size;
    return p.get();
  }

  void release(void* p, std::size_t bytes) noexcept {
    if (p == nullptr) return;
    std::lock_guard lock(mutex_);
    --stats_.in_use;
    try {
      free_[bucket(bytes)].push_back(p);
    } catch (...) {
      // No room to remember the block: give it back to the device instead.
      ::thrust::device_free(::thrust::device_pointer_cast(static_cast<char*>(p)));
    }
  }

  // Frees every cached block (blocks lent out stay valid). Never called by the library: a user
  // calls it between searches when the memory is wanted elsewhere.
  void trim() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& [size, list] : free_) {
      for (void* p : list) ::thrust::device_free(::thrust::device_pointer_cast(static_cast<char*>(p)));
      stats_.device_bytes -= size * list.size();
      list.clear();
    }
  }

  allocation_stats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  allocation_stats stats_;
};

// A move-only handle to `size` elements of T in device memory, lent by a caching allocator; it
// shares ownership of the allocator so that it may outlive the backend that made it.
template <class T>
class device_buffer {
 public:
  device_buffer() = default;
  device_buffer(std::shared_ptr<caching_allocator> from, index n)
      : alloc_(std::move(from)), size_(n),
        data_(static_cast<T*>(alloc_->acquire(static_cast<std::size_t>(n > 0 ? n : 1) * sizeof(T)))) {}
  device_buffer(device_buffer&& o) noexcept
      : alloc_(std::move(o.alloc_)), size_(std::exchange(o.size_, 0)), data_(std::exchange(o.data_, nullptr)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      reset();
      alloc_ = std::move(o.alloc_);
      size_ = std::exchange(o.size_, 0);
      data_ = std::exchange(o.data_, nullptr);
    }
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { reset(); }

  // Raw device pointers, for the functors and cuBLAS.
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  index size() const noexcept { return size_; }

 private:
  void reset() noexcept {
    if (alloc_ && data_ != nullptr) alloc_->release(data_, static_cast<std::size_t>(size_ > 0 ? size_ : 1) * sizeof(T));
    data_ = nullptr;
    size_ = 0;
  }

  std::shared_ptr<caching_allocator> alloc_;
  index size_ = 0;
  T* data_ = nullptr;
};

using tensor = device_buffer<float>;
using label_tensor = device_buffer<std::int32_t>;

// Scratch space of a backend (im2col columns, partial sums): grows to the largest request and
// is then reused; its blocks come from the same cache.
template <class T>
class workspace {
 public:
  explicit workspace(std::shared_ptr<caching_allocator> a) : alloc_(std::move(a)) {}
  T* get(index n) {
    if (buffer_.size() < n) buffer_ = device_buffer<T>(alloc_, n + n / 4);
    return buffer_.data();
  }

 private:
  std::shared_ptr<caching_allocator> alloc_;
  device_buffer<T> buffer_;
};

}  // namespace pcnas::backend::thrust
