// The library's one random number generator: xoshiro256** seeded through splitmix64, with
// our own integer and real mappings so that a seed gives the same numbers with every compiler.
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace pcnas {

namespace detail {

// splitmix64's output function: a cheap bijective mixer, good enough to turn consecutive
// seeds into unrelated-looking states.
constexpr std::uint64_t splitmix64_next(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t rotl64(std::uint64_t x, int k) noexcept {
  return (x << k) | (x >> (64 - k));
}

// The high and low halves of a 64×64-bit product, from four 32×32-bit products: standard C++,
// so the integer mapping cannot depend on whether a compiler offers a 128-bit type.
struct u128_parts {
  std::uint64_t high;
  std::uint64_t low;
};

constexpr u128_parts mul_64x64(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xffffffffULL, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffULL, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo;
  const std::uint64_t hi_lo = a_hi * b_lo;
  const std::uint64_t lo_hi = a_lo * b_hi;
  const std::uint64_t hi_hi = a_hi * b_hi;
  const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffULL) + lo_hi;
  return {hi_hi + (hi_lo >> 32) + (cross >> 32), (cross << 32) | (lo_lo & 0xffffffffULL)};
}

}  // namespace detail

// xoshiro256** (Blackman & Vigna): 256 bits of state, period 2^256 − 1, fast, and its whole
// state fits in a checkpoint as four integers.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& word : s_) word = detail::splitmix64_next(x);
    // splitmix64 is a bijection on each word, so four zero words cannot all come out of it
    // in practice; the guard keeps the generator out of its one fixed point regardless.
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
  }

  std::uint64_t next_u64() noexcept {
    const std::uint64_t result = detail::rotl64(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = detail::rotl64(s_[3], 45);
    return result;
  }

  // An unbiased integer in [0, n): Lemire's multiply-and-reject, which needs a division only
  // in the rare case that a rejection is possible.
  std::uint64_t uniform_index(std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("pcnas::rng::uniform_index: n must be at least 1");
    auto product = detail::mul_64x64(next_u64(), n);
    if (product.low < n) {
      const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
      while (product.low < threshold) product = detail::mul_64x64(next_u64(), n);
    }
    return product.high;
  }

  // A double in [0, 1) with 53 random bits: every value is a multiple of 2^-53.
  double uniform01() noexcept {
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
  }

  std::array<std::uint64_t, 4> state() const noexcept { return s_; }

  void set_state(const std::array<std::uint64_t, 4>& s) {
    if ((s[0] | s[1] | s[2] | s[3]) == 0)
      throw std::invalid_argument(
          "pcnas::rng::set_state: the all-zero state is not a valid xoshiro256** state "
          "(the generator would only ever return 0); the checkpoint is probably corrupt");
    s_ = s;
  }

 private:
  std::array<std::uint64_t, 4> s_{};
};

// Fisher–Yates with our rng, so that a seed gives the same permutation with every standard
// library (std::shuffle's use of the generator is unspecified).
template <class It>
void shuffle(It first, It last, rng& r) {
  static_assert(std::is_base_of_v<std::random_access_iterator_tag,
                                  typename std::iterator_traits<It>::iterator_category>,
                "pcnas::shuffle needs random-access iterators (a vector, an array or a pointer range).");
  const auto n = last - first;
  for (auto i = n - 1; i > 0; --i) {
    const auto j = static_cast<decltype(i)>(r.uniform_index(static_cast<std::uint64_t>(i) + 1));
    std::iter_swap(first + i, first + j);
  }
}

}  // namespace pcnas
