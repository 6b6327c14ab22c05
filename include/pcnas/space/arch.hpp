// Architectures: one choice index per searchable layer, with a text form
// ("k3e6 k5e3 zero ...") that round-trips and fails with messages that name
// the layer and its valid choices.
#pragma once

#include <pcnas/space/space.hpp>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pcnas::space {

template <class Space>
using architecture = std::array<int, Space::num_layers>;

/// Text that does not describe an architecture of the expected space.
class arch_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

inline std::vector<std::string_view> split_tokens(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  const auto is_sep = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == ',' || c == '\r'; };
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_sep(text[i])) ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  return tokens;
}

inline std::string describe_shape(const tensor_shape& s) { return space::to_string(s); }

// A user's text quoted in a message, cut short: a 100 kB argument is not echoed back whole.
inline std::string abbreviate(std::string_view text, std::size_t limit = 80) {
  if (text.size() <= limit) return std::string(text);
  return std::string(text.substr(0, limit)) + "... (" + std::to_string(text.size()) + " characters)";
}

}  // namespace detail

/// "layer 3 (24x14x14 -> 40x7x7, stride 2)": how messages name a layer.
template <class Space>
[[nodiscard]] std::string describe_layer(std::size_t l) {
  const layer_info& info = Space::layers[l];
  return "layer " + std::to_string(l) + " (" + detail::describe_shape(info.in) + " -> " +
         detail::describe_shape(info.out) + ", stride " + std::to_string(info.stride) + ")";
}

/// The valid tokens of one layer, space-separated.
template <class Space>
[[nodiscard]] std::string valid_choices(std::size_t l) {
  std::string out;
  for (std::size_t c = 0; c < Space::num_choices[l]; ++c) {
    if (c) out += ' ';
    out += Space::choice_names[l][c];
  }
  return out;
}

/// Whether every index is in its layer's range.
template <class Space>
[[nodiscard]] constexpr bool is_valid(const architecture<Space>& arch) {
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    if (arch[l] < 0 || static_cast<std::size_t>(arch[l]) >= Space::num_choices[l]) return false;
  return true;
}

/// Throws arch_error naming the first layer whose index is out of range.
template <class Space>
void check_arch(const architecture<Space>& arch) {
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    if (arch[l] < 0 || static_cast<std::size_t>(arch[l]) >= Space::num_choices[l])
      throw arch_error(describe_layer<Space>(l) + " of space '" + std::string(space_name<Space>()) +
                       "': choice index " + std::to_string(arch[l]) + " is out of range [0, " +
                       std::to_string(Space::num_choices[l]) + ")");
}

template <class Space>
[[nodiscard]] std::string to_string(const architecture<Space>& arch) {
  check_arch<Space>(arch);
  std::string out;
  for (std::size_t l = 0; l < Space::num_layers; ++l) {
    if (l) out += ' ';
    out += Space::choice_names[l][static_cast<std::size_t>(arch[l])];
  }
  return out;
}

/// Parses "k3e6 k5e3 zero ..." (spaces or commas between tokens).
template <class Space>
[[nodiscard]] architecture<Space> parse_arch(std::string_view text) {
  const auto tokens = detail::split_tokens(text);
  const std::string space(space_name<Space>());
  if (tokens.size() != Space::num_layers)
    throw arch_error("an architecture of space '" + space + "' has " + std::to_string(Space::num_layers) +
                     " choices, one per layer; got " + std::to_string(tokens.size()) + " in '" + detail::abbreviate(text) +
                     "'");
  architecture<Space> arch{};
  for (std::size_t l = 0; l < Space::num_layers; ++l) {
    int found = -1;
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c)
      if (Space::choice_names[l][c] == tokens[l]) found = static_cast<int>(c);
    if (found < 0)
      throw arch_error(describe_layer<Space>(l) + " of space '" + space + "': '" + detail::abbreviate(tokens[l], 40) +
                       "' is not a choice here; valid: " + valid_choices<Space>(l));
    arch[l] = found;
  }
  return arch;
}

/// Architecture from runtime indices (e.g. a search result).
template <class Space, class Range>
[[nodiscard]] architecture<Space> arch_from_indices(const Range& indices) {
  architecture<Space> arch{};
  if (std::size(indices) != Space::num_layers)
    throw arch_error("an architecture of space '" + std::string(space_name<Space>()) + "' has " +
                     std::to_string(Space::num_layers) + " choices; got " + std::to_string(std::size(indices)));
  std::size_t l = 0;
  for (auto v : indices) arch[l++] = static_cast<int>(v);
  check_arch<Space>(arch);
  return arch;
}

/// The space's choice names as runtime strings, one row per layer (a latency table's `choices`).
template <class Space>
std::vector<std::vector<std::string>> choice_name_table() {
  std::vector<std::vector<std::string>> names(Space::num_layers);
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c) names[l].emplace_back(Space::choice_names[l][c]);
  return names;
}

}  // namespace pcnas::space
