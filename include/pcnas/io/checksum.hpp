// FNV-1a (64 bit): a small, dependency-free checksum that detects truncated or damaged files
// (checkpoints). Not cryptographic: it guards against accidents, not against an adversary.
#pragma once

#include <cstdint>
#include <string_view>

namespace pcnas::io {

inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ULL;

inline constexpr std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t hash = fnv1a64_offset) noexcept {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace pcnas::io
