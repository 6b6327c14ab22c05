// Latency tables round-trip through JSON, and every kind of bad file is refused with a message
// that names the file and what was wrong.
#include <doctest/doctest.h>

#include <pcnas/json/latency_table.hpp>
#include <pcnas/space/presets.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include "temp_dir.hpp"

using pcnas::cost::latency_table;

namespace {
latency_table example() {
  latency_table t;
  t.space = "fmnist_micro";
  t.choices = {{"k3e1", "k3e3", "k5e6", "k7e6"}, {"k3e1", "k3e3", "k5e6", "k7e6", "zero"}};
  t.model.fixed = 0.125;
  t.model.per_layer = {{0.01, 0.02, 0.04, 0.05}, {0.011, 0.021, 0.041, 0.051, 0.0}};
  t.provenance = {.device = "Zen 3, 2 cores", .backend = "eigen", .batch = 128, .threads = 2,
                  .date = "2024-05-01T12:00:00Z", .library_version = "0.1.0", .repeats = 50, .warmup = 10};
  return t;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}
}  // namespace

TEST_CASE("latency table: save then load gives the same table") {
  pcnas_test::temp_dir dir("lt_roundtrip");
  const auto file = dir / "table.json";
  const auto t = example();
  pcnas::io::save_latency_table(file, t);
  const auto back = pcnas::io::load_latency_table(file, "fmnist_micro", t.choices);
  CHECK(back.space == t.space);
  CHECK(back.choices == t.choices);
  CHECK(back.model.fixed == t.model.fixed);
  CHECK(back.model.per_layer == t.model.per_layer);  // bit-exact: JSON numbers round-trip doubles
  CHECK(back.model.unit == "ms");
  CHECK(back.provenance.device == t.provenance.device);
  CHECK(back.provenance.threads == 2);
  CHECK(back.provenance.repeats == 50);
  CHECK(back.provenance.warmup == 10);
  CHECK(back.provenance.date == t.provenance.date);
}

TEST_CASE("latency table: bad files are refused with the path and the reason") {
  pcnas_test::temp_dir dir("lt_bad");
  const auto file = dir / "table.json";
  const auto good = pcnas::io::latency_table_to_json(example());

  SUBCASE("syntax error / truncated file") {
    const std::string text = good.dump();
    write_text(file, text.substr(0, text.size() / 2));
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file), doctest::Contains("table.json: not valid JSON"),
                         std::runtime_error);
  }
  SUBCASE("missing key") {
    auto doc = good;
    doc["provenance"].erase("threads");
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file), doctest::Contains("missing key 'provenance.threads'"),
                         std::runtime_error);
  }
  SUBCASE("a batch of 0 or less, or one that does not fit an int, is refused when the table is read") {
    for (const auto& bad : {nlohmann::json(0), nlohmann::json(-3), nlohmann::json(4294967296LL)}) {
      auto doc = good;
      doc["provenance"]["batch"] = bad;
      write_text(file, doc.dump());
      CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file),
                           doctest::Contains("provenance.batch must be an integer from 1 to"), std::runtime_error);
    }
  }
  SUBCASE("negative warm-up") {
    auto doc = good;
    doc["provenance"]["warmup"] = -1;
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file),
                         doctest::Contains("provenance.warmup must be an integer from 0 to"), std::runtime_error);
  }
  SUBCASE("a directory instead of a file") {
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(dir.path()), doctest::Contains("is a directory, not a file"),
                         std::runtime_error);
  }
  SUBCASE("negative time") {
    auto doc = good;
    doc["layers"][1]["times"][2] = -0.5;
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file),
                         doctest::Contains("layers[1].times[2] must be a finite non-negative number, got -0.5"),
                         std::runtime_error);
  }
  SUBCASE("non-finite time (JSON writes NaN as null)") {
    auto doc = good;
    doc["layers"][0]["times"][0] = std::nan("");
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file),
                         doctest::Contains("layers[0].times[0] must be a finite non-negative number, got null"),
                         std::runtime_error);
  }
  SUBCASE("names and times disagree") {
    auto doc = good;
    doc["layers"][0]["times"].erase(0);
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file), doctest::Contains("layers[0] has 4 choice names but 3 times"),
                         std::runtime_error);
  }
  SUBCASE("another format or version") {
    auto doc = good;
    doc["version"] = 7;
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file), doctest::Contains("version is 7"), std::runtime_error);
    doc = good;
    doc["format"] = "something.else";
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file), doctest::Contains("not a latency table"),
                         std::runtime_error);
  }
  SUBCASE("a table for another space") {
    write_text(file, good.dump());
    auto choices = example().choices;
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file, "fmnist", choices),
                         doctest::Contains("table.json: latency table is for space 'fmnist_micro', expected 'fmnist'"),
                         std::runtime_error);
    choices[1][4] = "k9e9";
    CHECK_THROWS_WITH_AS(pcnas::io::load_latency_table(file, "fmnist_micro", choices),
                         doctest::Contains("layer 1 has choices [k3e1 k3e3 k5e6 k7e6 zero], expected [k3e1 k3e3 k5e6 k7e6 k9e9]"),
                         std::runtime_error);
  }
}

TEST_CASE("latency table: the calibration record gives its sample and their times, and refuses torn ones") {
  pcnas_test::temp_dir dir("lt_calibration");
  const auto file = dir / "table.json";
  using micro = pcnas::presets::fmnist_micro;
  auto t = example();
  t.choices = pcnas::space::choice_name_table<micro>();
  t.model.per_layer.clear();
  for (const auto& names : t.choices) t.model.per_layer.emplace_back(names.size(), 0.01);
  pcnas::cost::latency_calibration cal;
  cal.method = "scale";
  cal.fit = {.a = 1.1, .b = 0.0};
  cal.uncalibrated = t.model;
  auto doc = pcnas::io::latency_table_to_json(t);
  doc["calibration"] = pcnas::io::calibration_to_json(cal, 3, {"k3e1 zero k3e1 zero", "k7e6 k7e6 k7e6 k7e6"});
  doc["calibration"]["measured"] = {0.5, 1.5};
  write_text(file, doc.dump());
  const auto rec = pcnas::io::read_calibration_record<micro>(file, t);
  CHECK(rec.architectures.size() == 2);
  CHECK(rec.measured == std::vector<double>{0.5, 1.5});

  SUBCASE("one time short") {
    doc["calibration"]["measured"] = {0.5};
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::read_calibration_record<micro>(file, t),
                         doctest::Contains("calibration.measured must have one time per architecture (2)"),
                         std::runtime_error);
  }
  SUBCASE("a time of zero") {
    doc["calibration"]["measured"] = {0.5, 0.0};
    write_text(file, doc.dump());
    CHECK_THROWS_WITH_AS(pcnas::io::read_calibration_record<micro>(file, t),
                         doctest::Contains("calibration.measured[1] must be a positive time in ms"), std::runtime_error);
  }
}
