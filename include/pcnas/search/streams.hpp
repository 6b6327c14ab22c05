// Random streams keyed by what they are for (the architecture of training step t, the s-th
// completion of pool step l) rather than drawn one after another from a single generator: a
// resumed search draws the same numbers without saving generator states mid-phase, and all
// candidates of a pool step share their completions' streams (common random numbers).
#pragma once

#include <cstdint>

#include <pcnas/io/checksum.hpp>
#include <pcnas/rng.hpp>

#include <string_view>

namespace pcnas::search {

enum class stream_kind : std::uint64_t {
  training = 1,    // index: the global training step
  potential = 2,   // index: pool step · 2^32 + completion
  evolution = 3,   // index: unused (one sequential stream)
  random_search = 4,
};

// splitmix64's finaliser: a bijective mixer with good avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A seed for stream (kind, index) of a search seeded with `seed`: the mixer applied to each
// component in turn, so nearby keys give unrelated streams.
constexpr std::uint64_t stream_seed(std::uint64_t seed, stream_kind kind, std::uint64_t index) noexcept {
  return mix64(mix64(mix64(seed) ^ static_cast<std::uint64_t>(kind)) ^ index);
}

inline rng stream(std::uint64_t seed, stream_kind kind, std::uint64_t index) {
  return rng(stream_seed(seed, kind, index));
}

// A method outside the list above names its streams: the name's hash is the kind, so a new
// method needs no entry here.
inline rng stream(std::uint64_t seed, std::string_view method, std::uint64_t index) {
  return rng(stream_seed(seed, static_cast<stream_kind>(io::fnv1a64(method)), index));
}

}  // namespace pcnas::search
