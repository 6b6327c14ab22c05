// The progress printer: plain lines for logs, an in-place line for terminals, and as a callback.
#include <doctest/doctest.h>

#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/progress.hpp>

#include <cstdio>
#include <string>

#include "search_problem.hpp"

using namespace pcnas::search;

namespace {
std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}
}  // namespace

TEST_CASE("progress: durations, plain lines and terminal lines") {
  CHECK(progress_printer::format_duration(5) == "5s");
  CHECK(progress_printer::format_duration(185) == "3m05s");
  CHECK(progress_printer::format_duration(3720) == "1h02m");

  std::FILE* log = std::tmpfile();
  REQUIRE(log != nullptr);
  {
    progress_printer p({.stream = log, .terminal = 0, .plain_interval_s = 0.0});
    CHECK(!p.terminal());
    p.begin("train", 4);
    for (std::size_t i = 1; i <= 4; ++i) p.update(i, "loss 1.0");
    p.message("pool step 1/8");
  }
  const std::string plain = read_all(log);
  std::fclose(log);
  CHECK(plain.find("train 1/4  25.0%") != std::string::npos);
  CHECK(plain.find("train 4/4 100.0%") != std::string::npos);
  CHECK(plain.find("ETA") != std::string::npos);
  CHECK(plain.find("loss 1.0") != std::string::npos);
  CHECK(plain.find('\r') == std::string::npos);
  CHECK(plain.find("pool step 1/8\n") != std::string::npos);

  std::FILE* tty = std::tmpfile();
  REQUIRE(tty != nullptr);
  {
    progress_printer p({.stream = tty, .terminal = 1, .terminal_interval_s = 0.0});
    p.begin("train", 3);
    p.update(1);
    p.message("event");  // ends the open line first
    p.update(3);
  }
  const std::string live = read_all(tty);
  std::fclose(tty);
  CHECK(live.find("\rtrain 1/3") != std::string::npos);
  CHECK(live.find("\x1b[K\nevent\n") != std::string::npos);
  CHECK(live.back() == '\n');
}

TEST_CASE("progress: as a search callback") {
  std::FILE* log = std::tmpfile();
  REQUIRE(log != nullptr);
  const auto problem = pcnas_test::make_search_problem(1, 3, 3);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  {
    progress_callback progress({.stream = log, .terminal = 0, .plain_interval_s = 0.0});
    (void)pc_nas_search(net, k, {.total_steps = 40}, progress);
  }
  const std::string text = read_all(log);
  std::fclose(log);
  CHECK(text.find("train[warmup] 1/40") != std::string::npos);
  CHECK(text.find("train[interval] 40/40") != std::string::npos);
  CHECK(text.find("pool step 3/3") != std::string::npos);
  CHECK(text.find("start: PC-NAS over 3 layers") != std::string::npos);
  CHECK(text.find("done: best") != std::string::npos);
}
