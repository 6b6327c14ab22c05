#include <pcnas/json/arch.hpp>
#include <pcnas/space/presets.hpp>

#include <doctest/doctest.h>

using namespace pcnas;
using presets::fmnist;

TEST_CASE("architecture JSON round-trips and refuses another space") {
  const auto arch = space::parse_arch<fmnist>("k3e6 k5e3 k7e6 zero k3e3 k5e6 zero k7e3");
  const auto j = io::arch_to_json<fmnist>(arch);
  CHECK(j["space"] == "fmnist");
  CHECK(io::arch_from_json<fmnist>(nlohmann::json::parse(j.dump())) == arch);

  nlohmann::json by_index = {{"choices", arch}};
  CHECK(io::arch_from_json<fmnist>(by_index) == arch);

  CHECK_THROWS_WITH_AS((void)io::arch_from_json<presets::fmnist_micro>(j),
                       "the architecture is for space 'fmnist', expected 'fmnist_micro'", space::arch_error);
  nlohmann::json bad_index = {{"choices", {0, 0, 0, 0, 0, 0, 0, 7}}};
  CHECK_THROWS_AS((void)io::arch_from_json<fmnist>(bad_index), space::arch_error);
  CHECK_THROWS_AS((void)io::arch_from_json<fmnist>(nlohmann::json::array()), space::arch_error);
}
