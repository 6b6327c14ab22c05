// An unsigned 128-bit count of architectures. Spaces reach 2^64 quickly (7^23 > 2^64), and
// sampling must stay exactly uniform, so counts are exact integers, portable (no __int128).
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <pcnas/rng.hpp>

namespace pcnas::cost {

class count128 {
 public:
  constexpr count128() noexcept = default;
  constexpr count128(std::uint64_t value) noexcept : low_(value) {}  // NOLINT: a count is a number
  constexpr count128(std::uint64_t high, std::uint64_t low) noexcept : high_(high), low_(low) {}

  constexpr std::uint64_t high() const noexcept { return high_; }
  constexpr std::uint64_t low() const noexcept { return low_; }
  constexpr bool is_zero() const noexcept { return (high_ | low_) == 0; }
  constexpr bool fits_u64() const noexcept { return high_ == 0; }

  // Exceeding 2^128 − 1 architectures (about 7^45) is refused rather than wrapped: a wrapped
  // count would silently bias the sampler.
  constexpr count128& operator+=(const count128& other) {
    const std::uint64_t low = low_ + other.low_;
    const std::uint64_t carry = low < low_ ? 1 : 0;
    const std::uint64_t partial = high_ + other.high_;
    const std::uint64_t high = partial + carry;
    if (partial < high_ || high < partial)
      throw std::overflow_error(
          "pcnas::cost::count128: more than 2^128 - 1 feasible architectures; split the "
          "search space or constrain it further");
    high_ = high;
    low_ = low;
    return *this;
  }

  constexpr count128& operator-=(const count128& other) {
    if (*this < other) throw std::underflow_error("pcnas::cost::count128: negative count");
    const std::uint64_t borrow = low_ < other.low_ ? 1 : 0;
    low_ -= other.low_;
    high_ = high_ - other.high_ - borrow;
    return *this;
  }

  friend constexpr count128 operator+(count128 a, const count128& b) { return a += b; }
  friend constexpr count128 operator-(count128 a, const count128& b) { return a -= b; }
  friend constexpr bool operator==(const count128&, const count128&) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(const count128& a, const count128& b) noexcept {
    if (auto c = a.high_ <=> b.high_; c != 0) return c;
    return a.low_ <=> b.low_;
  }

  double to_double() const noexcept {
    return static_cast<double>(high_) * 0x1.0p64 + static_cast<double>(low_);
  }

  // Decimal digits, for reports: the long division keeps it exact beyond 2^64.
  std::string to_string() const {
    if (is_zero()) return "0";
    std::string digits;
    std::uint64_t hi = high_, lo = low_;
    while ((hi | lo) != 0) {
      // Divide the 128-bit value by 10 in 32-bit limbs so that no partial product overflows.
      std::uint64_t limbs[4] = {hi >> 32, hi & 0xffffffffULL, lo >> 32, lo & 0xffffffffULL};
      std::uint64_t rem = 0;
      for (auto& limb : limbs) {
        const std::uint64_t cur = (rem << 32) | limb;
        limb = cur / 10;
        rem = cur % 10;
      }
      hi = (limbs[0] << 32) | limbs[1];
      lo = (limbs[2] << 32) | limbs[3];
      digits.push_back(static_cast<char>('0' + rem));
    }
    std::reverse(digits.begin(), digits.end());
    return digits;
  }

 private:
  std::uint64_t high_ = 0;
  std::uint64_t low_ = 0;
};

// An exactly uniform integer in [0, n). Below 2^64 this is the rng's own unbiased mapping;
// above, the draw keeps only as many bits as n needs and retries the rare draw past n
// (expected fewer than two tries: it is an integer draw, not a rejection of architectures).
inline count128 uniform_below(rng& r, const count128& n) {
  if (n.is_zero()) throw std::invalid_argument("pcnas::cost::uniform_below: n must be at least 1");
  if (n.fits_u64()) return count128{r.uniform_index(n.low())};
  int bits = 64;
  while (bits > 0 && ((n.high() >> (bits - 1)) & 1) == 0) --bits;
  const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << bits) - 1);
  for (;;) {
    const std::uint64_t high = r.next_u64() & mask;
    const std::uint64_t low = r.next_u64();
    const count128 candidate{high, low};
    if (candidate < n) return candidate;
  }
}

}  // namespace pcnas::cost
