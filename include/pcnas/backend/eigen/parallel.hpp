// Threading, scratch memory and the SIMD vector type of the Eigen backend.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/policy.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if !defined(__GNUC__)
#error "pcnas's Eigen backend uses GCC/Clang vector extensions for its depthwise kernels"
#endif

namespace pcnas::backend::eigen::detail {

// One SIMD register of floats: 16 lanes with AVX-512, 8 with AVX, else 4 (SSE, NEON).
// Channels are processed in blocks of `lanes`. Build with -march=native (or -mavx2 -mfma) for
// speed; the default x86-64 target has neither AVX nor FMA.
#if defined(__AVX512F__)
inline constexpr int lanes = 16;
#elif defined(__AVX__)
inline constexpr int lanes = 8;
#else
inline constexpr int lanes = 4;
#endif
typedef float vfloat __attribute__((vector_size(lanes * sizeof(float))));

[[gnu::always_inline]] inline vfloat vload(const float* p) noexcept {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void vstore(float* p, vfloat v) noexcept { std::memcpy(p, &v, sizeof v); }
// x − 0 is x for every x (−0 included), so the compiler folds it to a plain broadcast, which it
// merges into the multiply-add as a broadcast memory operand; 0 + x is not x for x = −0, and
// spelled that way it costs an add and a shuffle per broadcast in the inner loops.
[[gnu::always_inline]] inline vfloat vbroadcast(float x) noexcept { return x - vfloat{}; }

// The first `n` lanes (0 < n ≤ lanes); the others read as zero / are left untouched. Masked
// instructions where the target has them, so that channel tails stay vectorised and never touch
// memory beyond them.
[[gnu::always_inline]] inline vfloat vload_n(const float* p, int n) noexcept {
#if defined(__AVX512F__)
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
#elif defined(__AVX__)
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx));
#else
  vfloat v{};
  for (int l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}
[[gnu::always_inline]] inline void vstore_n(float* p, vfloat v, int n) noexcept {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
#elif defined(__AVX__)
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx), v);
#else
  for (int l = 0; l < n; ++l) p[l] = v[l];
#endif
}
[[gnu::always_inline]] inline vfloat vmin(vfloat a, vfloat b) noexcept { return a < b ? a : b; }
[[gnu::always_inline]] inline vfloat vmax(vfloat a, vfloat b) noexcept { return a > b ? a : b; }

// acc + a·b with one rounding where the target has a fused multiply-add (as Eigen's kernels
// compute), else a multiply then an add.
[[gnu::always_inline]] inline vfloat vfma(vfloat a, vfloat b, vfloat acc) noexcept {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, acc);
#elif defined(__FMA__) && defined(__AVX__)
  return _mm256_fmadd_ps(a, b, acc);
#else
  return a * b + acc;
#endif
}

// x·scale + shift, rounded the same way wherever it is written. A batch norm's forward computes
// relu6(x·scale + shift) and its backward recomputes x·scale + shift to know where the ReLU6
// passed; the two must agree bit for bit (a disagreement at 0 or 6 gives a gradient that belongs
// to neither side). Written as a plain `x * scale + shift`, the compiler may contract it into one
// fused multiply-add in one place and not in another (GCC's default -ffp-contract=fast under
// -march=native decides per expression, after inlining), so the two roundings could differ. Here
// it is an explicit fused multiply-add wherever the target has one (one rounding, no choice left
// to the compiler), and otherwise a multiply then an add, which cannot be contracted because
// there is no fused instruction to contract into.
[[gnu::always_inline]] inline vfloat vaffine(vfloat x, vfloat scale, vfloat shift) noexcept {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(x, scale, shift);
#elif defined(__FMA__) && defined(__AVX__)
  return _mm256_fmadd_ps(x, scale, shift);
#elif defined(__FP_FAST_FMAF)
  vfloat r;
  for (int l = 0; l < lanes; ++l) r[l] = __builtin_fmaf(x[l], scale[l], shift[l]);
  return r;
#else
  return x * scale + shift;
#endif
}
// relu6(x·scale + shift): the forward of batch norm + ReLU6.
[[gnu::always_inline]] inline vfloat vbn_relu6(vfloat x, vfloat scale, vfloat shift) noexcept {
  return vmin(vmax(vaffine(x, scale, shift), vfloat{}), vbroadcast(6.0f));
}
// g where the ReLU6 passed (0 < pre < 6), else 0: the ReLU6's backward from its input `pre`, or
// equally from its output (relu6 maps (0, 6) onto itself and everything else to 0 or 6).
[[gnu::always_inline]] inline vfloat relu6_pass(vfloat pre, vfloat g) noexcept {
  return ((pre > 0.0f) & (pre < 6.0f)) ? g : vfloat{};
}
// The same, with the mask recomputed from the batch norm's input x through vaffine, exactly as
// vbn_relu6 computed the forward.
[[gnu::always_inline]] inline vfloat relu6_pass(vfloat x, vfloat scale, vfloat shift, vfloat g) noexcept {
  return relu6_pass(vaffine(x, scale, shift), g);
}

// Full or masked, by n.
[[gnu::always_inline]] inline vfloat vld(const float* p, int n) noexcept { return n == lanes ? vload(p) : vload_n(p, n); }
[[gnu::always_inline]] inline void vst(float* p, vfloat v, int n) noexcept {
  if (n == lanes) vstore(p, v);
  else vstore_n(p, v, n);
}
// The lanes of channel block c of C.
[[gnu::always_inline]] inline int block_lanes(index C, index c) noexcept {
  return static_cast<int>(C - c < lanes ? C - c : lanes);
}

struct aligned_free {
  void operator()(float* p) const noexcept { std::free(p); }
};
using aligned_floats = std::unique_ptr<float[], aligned_free>;

inline aligned_floats allocate_floats(index n) {
  const std::size_t bytes = (static_cast<std::size_t>(std::max<index>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return aligned_floats(static_cast<float*>(p));
}

// The scratch slots of a thread, by role. A kernel uses each slot for one buffer at a time; two
// kernels that run one after the other may reuse the same slot.
enum scratch_slot : int {
  slot_x = 0,   // the operand a kernel reads: a packed (padded) input plane, or a GEMM input block
  slot_dy = 1,  // the second operand: a packed gradient plane, a GEMM activation block, statistics
  slot_dw = 2,  // the thread's partial weight gradient, summed over threads in thread order
  slot_w = 3,   // packed weights (thread 0 only, shared by all threads)
  slot_h1 = 4,  // the evaluation pipeline's row window of the first hidden tensor (z1)
  slot_h2 = 5,  // and of the second (z2)
};
// The slots of the single-thread `big` scratch of the fused MBConv backward: its two
// hidden-size gradients.
enum big_slot : int { big_g2 = 0, big_g1 = 1 };

// Scratch memory per thread, grown on demand and kept between calls.
class scratch {
 public:
  float* get(int thread, int slot, index n) {
    auto& s = slots_[static_cast<std::size_t>(thread) * slots_per_thread + static_cast<std::size_t>(slot)];
    if (s.size < n) {
      s.data = allocate_floats(n);
      s.size = n;
    }
    return s.data.get();
  }
  void resize_threads(int threads) { slots_.resize(static_cast<std::size_t>(threads) * slots_per_thread); }
  static constexpr int slots_per_thread = 6;

 private:
  struct slot {
    aligned_floats data;
    index size = 0;
  };
  std::vector<slot> slots_;
};

// [begin, end) of part `t` of `parts` near-equal parts of [0, n).
inline std::pair<index, index> split(index n, int t, int parts) noexcept {
  const index q = n / parts, r = n % parts;
  const index begin = t * q + std::min<index>(t, r);
  return {begin, begin + q + (t < r ? 1 : 0)};
}

// Runs f(thread, threads) on `threads` threads (or once, serially, without OpenMP or when
// the work is too small to be worth waking them).
template <class F>
void parallel(int threads, F&& f) {
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    f(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#else
  (void)threads;
#endif
  f(0, 1);
}

// The number of parts parallel_for(threads, n, min_per_thread, ...) splits [0, n) into.
inline int planned_parts(int threads, index n, index min_per_thread) noexcept {
#if defined(_OPENMP)
  return static_cast<int>(std::clamp<index>(n / std::max<index>(min_per_thread, 1), 1, threads));
#else
  (void)threads;
  (void)n;
  (void)min_per_thread;
  return 1;
#endif
}

// Splits [0, n) statically over the threads: f(begin, end, part). Returns the number of parts,
// so that per-part partial results can be summed afterwards in part order.
template <class F>
int parallel_for(int threads, index n, index min_per_thread, F&& f) {
  const int t = static_cast<int>(std::clamp<index>(n / std::max<index>(min_per_thread, 1), 1, threads));
  int parts = 1;
  parallel(t, [&](int thread, int count) {
    if (thread == 0) parts = count;
    const auto [b, e] = split(n, thread, count);
    f(b, e, thread);
  });
  return parts;
}

}  // namespace pcnas::backend::eigen::detail
