// `pcnas info`: a space's layers, shapes, choices and size; an architecture's costs.
#include "commands.hpp"
#include "spaces.hpp"

#include <pcnas/cost/analytic.hpp>
#include <pcnas/json/arch.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <optional>

namespace pcnas_cli {
namespace {

using pcnas::space::tensor_shape;

nlohmann::json cost_json(const pcnas::space::op_cost& c) {
  return {{"macs", c.macs}, {"params", c.params}, {"activation_bytes", c.activation_bytes}};
}

template <class S>
nlohmann::json space_json() {
  nlohmann::json j;
  j["space"] = std::string(S::name);
  j["num_layers"] = S::num_layers;
  if (S::num_architectures_exact)
    j["num_architectures"] = S::num_architectures;
  else
    j["num_architectures"] = nullptr;
  j["log10_num_architectures"] = S::log10_num_architectures;
  j["input"] = pcnas::space::to_string(S::input_shape);
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    nlohmann::json choices = nlohmann::json::array();
    for (std::size_t c = 0; c < S::num_choices[l]; ++c) {
      auto cj = cost_json(S::choice_costs[l][c]);
      cj["name"] = std::string(S::choice_names[l][c]);
      choices.push_back(cj);
    }
    layers.push_back({{"in", pcnas::space::to_string(S::layers[l].in)},
                      {"out", pcnas::space::to_string(S::layers[l].out)},
                      {"stride", S::layers[l].stride},
                      {"choices", choices}});
  }
  j["layers"] = layers;
  return j;
}

template <class S>
void print_space(const pcnas::space::architecture<S>* arch) {
  std::printf("space %s: input %s, %zu searchable layers\n", std::string(S::name).c_str(),
              pcnas::space::to_string(S::input_shape).c_str(), S::num_layers);
  for (const auto& op : S::stem_ops)
    std::printf("  stem   %-8s %s -> %s stride %d  %.2f M MACs\n", std::string(op.name).c_str(),
                pcnas::space::to_string(op.in).c_str(), pcnas::space::to_string(op.out).c_str(), op.stride, op.cost.macs / 1e6);
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    std::printf("  layer %2zu %s -> %s stride %d:", l, pcnas::space::to_string(S::layers[l].in).c_str(),
                pcnas::space::to_string(S::layers[l].out).c_str(), S::layers[l].stride);
    for (std::size_t c = 0; c < S::num_choices[l]; ++c) {
      const bool chosen = arch && static_cast<std::size_t>((*arch)[l]) == c;
      std::printf(" %s%s%s(%.2fM)", chosen ? "[" : "", std::string(S::choice_names[l][c]).c_str(), chosen ? "]" : "",
                  S::choice_costs[l][c].macs / 1e6);
    }
    std::printf("\n");
  }
  std::printf("  head   conv1x1 %d, global average pool, FC %d  %.2f M MACs\n", S::head_channels, S::num_classes,
              S::head_cost.macs / 1e6);
  if (S::num_architectures_exact)
    std::printf("architectures: %llu (10^%.2f)\n", static_cast<unsigned long long>(S::num_architectures),
                S::log10_num_architectures);
  else
    std::printf("architectures: 10^%.2f (more than 2^64)\n", S::log10_num_architectures);
}

void print_cost(const char* label, const pcnas::space::op_cost& c) {
  std::printf("%s: %.3f M MACs, %.4f M params, %.3f MB activations per image\n", label, c.macs / 1e6, c.params / 1e6,
              c.activation_bytes / 1e6);
}

struct info_options {
  std::string space;
  std::string arch;
  bool json = false;
};

int run_info(const info_options& o) {
  return with_space(o.space, [&]<class S>(std::type_identity<S>) {
    std::optional<pcnas::space::architecture<S>> arch;
    if (!o.arch.empty())
      arch = pcnas::space::parse_arch<S>(o.arch);
    else if (pcnas::space::is_fixed_network<S>())
      arch = pcnas::space::architecture<S>{};

    if (o.json) {
      auto j = space_json<S>();
      if (arch) {
        j.update(cost_json(pcnas::cost::arch_cost<S>(*arch)));
        j["arch"] = pcnas::space::to_string<S>(*arch);
      } else {
        const auto lo = pcnas::cost::min_macs_arch_cost<S>(), hi = pcnas::cost::max_macs_arch_cost<S>();
        j["macs"] = {{"min", lo.macs}, {"max", hi.macs}};
        j["params"] = {{"min", lo.params}, {"max", hi.params}};
        j["activation_bytes"] = {{"min", lo.activation_bytes}, {"max", hi.activation_bytes}};
      }
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    print_space<S>(arch ? &*arch : nullptr);
    if (arch) {
      std::printf("architecture: %s\n", pcnas::space::to_string<S>(*arch).c_str());
      print_cost("cost", pcnas::cost::arch_cost<S>(*arch));
    } else {
      print_cost("cheapest (by MACs)", pcnas::cost::min_macs_arch_cost<S>());
      print_cost("most expensive    ", pcnas::cost::max_macs_arch_cost<S>());
    }
    return 0;
  });
}

}  // namespace

command add_info(CLI::App& app) {
  auto o = std::make_shared<info_options>();
  auto* cmd = app.add_subcommand("info", "Print a space's layers, shapes, choices and size, or an "
                                         "architecture's MACs, parameters and activation memory");
  cmd->add_option("space", o->space, "Search space or fixed network")->required();
  cmd->add_option("--arch", o->arch, "An architecture of the space, e.g. \"k3e6 zero ...\"");
  cmd->add_flag("--json", o->json,
                "Print one JSON object (keys include macs, params, activation_bytes, num_architectures; "
                "without --arch on a searchable space, the cost keys hold {min, max})");
  return {cmd, [o] { return run_info(*o); }};
}

}  // namespace pcnas_cli
