// Atomic replacement of files and the checksum.
#include <doctest/doctest.h>

#include <pcnas/io/atomic_file.hpp>
#include <pcnas/io/checksum.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "temp_dir.hpp"

TEST_CASE("write_file_atomically replaces the content and leaves no temporary") {
  pcnas_test::temp_dir dir("atomic");
  const auto file = dir / "state.bin";
  pcnas::io::write_file_atomically(file, "first");
  CHECK(pcnas::io::read_file(file) == "first");
  const std::string binary("a\0b\xff", 4);
  pcnas::io::write_file_atomically(file, binary);
  CHECK(pcnas::io::read_file(file) == binary);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("a failed write leaves the previous file intact and names the path") {
  pcnas_test::temp_dir dir("atomic_fail");
  const auto file = dir / "table.json";
  pcnas::io::write_file_atomically(file, "kept");
  CHECK_THROWS_WITH_AS(pcnas::io::write_file_atomically(dir / "missing_dir/x.json", "lost"),
                       doctest::Contains("missing_dir"), std::runtime_error);
  CHECK(pcnas::io::read_file(file) == "kept");
  CHECK_THROWS_WITH_AS(pcnas::io::read_file(dir / "nope.json"), doctest::Contains("nope.json: cannot open"),
                       std::runtime_error);
}

TEST_CASE("fnv1a64 matches the published test vectors") {
  // From the FNV reference test suite: "" and "a" and "foobar".
  CHECK(pcnas::io::fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(pcnas::io::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(pcnas::io::fnv1a64("foobar") == 0x85944171f73967e8ULL);
  static_assert(pcnas::io::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("read_file refuses a directory by name instead of failing inside the stream buffer") {
  pcnas_test::temp_dir dir("read_dir");
  CHECK_THROWS_WITH_AS(pcnas::io::read_file(dir.path()), doctest::Contains("is a directory, not a file"),
                       std::runtime_error);
}

TEST_CASE("remove_stale_temporaries removes a dead writer's temporary and keeps a live one's") {
  pcnas_test::temp_dir dir("stale_tmp");
  // A pid that surely ran and ended: a child that exits at once, reaped.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const auto write = [](const std::filesystem::path& p) { std::ofstream(p) << "partial"; };
  const auto dead = dir / ("checkpoint.bin.tmp." + std::to_string(child));
  const auto live = dir / ("result.json.tmp." + std::to_string(::getppid()));
  const auto other = dir / "notes.tmp.txt";
  write(dead);
  write(live);
  write(other);
  const auto removed = pcnas::io::remove_stale_temporaries(dir.path());
  REQUIRE(removed.size() == 1);
  CHECK(removed.front() == dead);
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(live));
  CHECK(std::filesystem::exists(other));
}
