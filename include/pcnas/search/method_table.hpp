// The methods a program offers by name (`--method NAME`): a list of row types, each with
// `static constexpr std::string_view name` and `help`, and whatever the program calls on it.
// Offering a new method is one row in the list.
#pragma once

#include <string>
#include <string_view>

namespace pcnas::search {

template <class... Rows>
struct method_table {
  static_assert(sizeof...(Rows) > 0, "a method table needs at least one row");

  /// "a, b or c", for help texts and errors.
  static std::string names() {
    std::string out;
    std::size_t i = 0;
    ((out += (i == 0 ? "" : (i + 1 == sizeof...(Rows) ? " or " : ", ")) + std::string(Rows::name), ++i), ...);
    return out;
  }

  static bool contains(std::string_view name) { return ((Rows::name == name) || ...); }

  /// Calls f(Row{}) for the row called `name`; false when there is none.
  template <class F>
  static bool dispatch(std::string_view name, F&& f) {
    return ((Rows::name == name ? (f(Rows{}), true) : false) || ...);
  }
};

}  // namespace pcnas::search
