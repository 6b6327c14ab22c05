// The library version, for provenance records and the CLI.
#pragma once

#define PCNAS_VERSION_MAJOR 0
#define PCNAS_VERSION_MINOR 1
#define PCNAS_VERSION_PATCH 0
#define PCNAS_VERSION_STRING "0.1.0"

namespace pcnas {
inline constexpr const char* version = PCNAS_VERSION_STRING;
}  // namespace pcnas
