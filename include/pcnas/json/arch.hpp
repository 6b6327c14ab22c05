// Architectures as JSON: {"space": ..., "arch": "k3e6 ...", "choices": [...]}.
// Reading checks the space name and every index, naming what was expected.
#pragma once

#include <pcnas/space/arch.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace pcnas::io {

template <class Space>
[[nodiscard]] nlohmann::json arch_to_json(const space::architecture<Space>& arch) {
  return {{"space", std::string(space::space_name<Space>())},
          {"arch", space::to_string<Space>(arch)},
          {"choices", arch}};
}

/// Accepts the object written by arch_to_json; "arch" (text) wins over "choices".
template <class Space>
[[nodiscard]] space::architecture<Space> arch_from_json(const nlohmann::json& j) {
  const std::string expected(space::space_name<Space>());
  if (!j.is_object()) throw space::arch_error("an architecture in JSON is an object with \"space\" and \"arch\"");
  if (j.contains("space") && j["space"].is_string() && j["space"].get<std::string>() != expected)
    throw space::arch_error("the architecture is for space '" + j["space"].get<std::string>() + "', expected '" +
                            expected + "'");
  if (j.contains("arch") && j["arch"].is_string()) return space::parse_arch<Space>(j["arch"].get<std::string>());
  if (j.contains("choices") && j["choices"].is_array()) {
    std::vector<int> indices;
    for (const auto& v : j["choices"]) {
      if (!v.is_number_integer()) throw space::arch_error("\"choices\" must hold integers, one per layer");
      indices.push_back(v.get<int>());
    }
    return space::arch_from_indices<Space>(indices);
  }
  throw space::arch_error("the architecture object has neither \"arch\" (text) nor \"choices\" (indices)");
}

}  // namespace pcnas::io
