// Latency tables in JSON: parsed, checked against a space, then used the way a search uses
// them (the range of totals and a prediction).
#include <pcnas/json/latency_table.hpp>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto doc = nlohmann::json::parse(data, data + size, nullptr, false);
  if (doc.is_discarded()) return 0;
  try {
    const auto table = pcnas::io::latency_table_from_json(doc, "fuzz.json");
    if (table.provenance.batch < 1) std::abort();
    const double lo = table.model.min_total(), hi = table.model.max_total();
    if (!(lo <= hi) || !std::isfinite(lo)) std::abort();
    std::vector<int> first(table.model.per_layer.size(), 0);
    (void)table.model.predict(first);
    pcnas::cost::check_same_space(table, "fmnist_micro",
                                  {{"k3e1", "k3e3", "k5e6", "k7e6"},
                                   {"k3e1", "k3e3", "k5e6", "k7e6", "zero"},
                                   {"k3e1", "k3e3", "k5e6", "k7e6"},
                                   {"k3e1", "k3e3", "k5e6", "k7e6", "zero"}});
  } catch (const std::exception&) {
  }
  return 0;
}
