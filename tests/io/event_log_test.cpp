// The JSON-lines event log of a search, and results as JSON.
#include <doctest/doctest.h>

#include <pcnas/json/event_log.hpp>
#include <pcnas/json/fields.hpp>
#include <pcnas/json/search_result.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/spos_evolution.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "search/search_problem.hpp"
#include "temp_dir.hpp"

using namespace pcnas;

namespace {
std::vector<nlohmann::json> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}
}  // namespace

TEST_CASE("event log: every pool update with potentials and predicted costs, steps, events") {
  pcnas_test::temp_dir dir("event_log");
  const auto file = dir / "search.jsonl";
  const auto problem = pcnas_test::make_search_problem(3, 4, 3);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  search::pc_nas_result result;
  {
    io::event_log log(file, {.step_every = 10});
    result = search::pc_nas_search(net, k, {.total_steps = 200, .seed = 3}, log);
  }
  const auto lines = read_lines(file);
  std::map<std::string, int> count;
  std::vector<nlohmann::json> pools;
  for (const auto& l : lines) {
    ++count[l.at("type").get<std::string>()];
    CHECK(l.contains("time_s"));
    if (l["type"] == "pool") pools.push_back(l);
  }
  CHECK(count["step"] == 20);
  CHECK(count["pool"] == 4);
  CHECK(count["candidate"] > 4);
  CHECK(lines.front()["type"] == "event");
  CHECK(lines.front()["kind"] == "start");
  CHECK(lines.back()["kind"] == "done");
  for (std::size_t l = 0; l < pools.size(); ++l) {
    CHECK(pools[l]["layer"] == l);
    for (const auto& m : pools[l]["pool"]) {
      CHECK(m["prefix"].size() == l + 1);
      CHECK(m["potential"].is_number());
      CHECK(m["min_cost"].get<double>() <= k.limit());
      CHECK(m["mean_cost"].get<double>() <= k.limit());
    }
  }
  CHECK(pools.back()["pool"][0]["prefix"].get<std::vector<int>>() == result.best_arch);

  // Appending: a second (resumed) run adds to the same file.
  {
    io::event_log log(file, {.step_every = 0, .candidates = false});
    auto other = problem.supernet();
    (void)search::pc_nas_search(other, k, {.total_steps = 50, .seed = 4}, log);
  }
  CHECK(read_lines(file).size() == lines.size() + 4 + 3);  // 4 pool steps; start, timing, done
  CHECK_THROWS_WITH_AS(io::event_log(dir / "no/such/dir.jsonl"), doctest::Contains("cannot open the event log"),
                       std::runtime_error);
}

TEST_CASE("results as JSON, saved atomically") {
  pcnas_test::temp_dir dir("result_json");
  const auto problem = pcnas_test::make_search_problem(5, 4, 3);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  const auto pc = search::pc_nas_search(net, k, {.total_steps = 100, .seed = 5});
  io::save_json(dir / "pc_nas.json", io::to_json(pc));
  const auto doc = io::parse_json_file(dir / "pc_nas.json");
  CHECK(doc["algorithm"] == "pc_nas");
  CHECK(doc["best_arch"].get<std::vector<int>>() == pc.best_arch);
  CHECK(doc["best_accuracy"].get<double>() == pc.best_accuracy);
  CHECK(doc["history"].size() == 4);

  auto other = problem.supernet();
  const auto evo = search::evolution_search(other, k, {.population = 10, .evaluations = 30, .seed = 1});
  const auto j = io::to_json(evo, "evolution");
  CHECK(j["evaluations"] == 30);
  CHECK(j["top"].size() == 10);
  CHECK(j["top"][0]["arch"].get<std::vector<int>>() == evo.best_arch);
  // NaN has no JSON form: it is written as null.
  search::uniform_training_result empty;
  empty.mean_loss = std::nan("");
  CHECK(io::to_json(empty)["mean_loss"].dump() == "null");
}
