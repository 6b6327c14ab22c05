// A fourth search method, written as a user would add one: this header alone. Layer-wise greedy
// search on a trained supernet: from a uniform feasible start, each layer in turn takes the
// feasible choice (the others held) with the best held-out accuracy. One layer is one unit of
// work; the driver gives it resume, checkpoints and events.
#pragma once

#include <pcnas/search/driver.hpp>
#include <pcnas/search/evaluation_record.hpp>
#include <pcnas/search/streams.hpp>

#include <string>
#include <vector>

namespace pcnas_test {

using namespace pcnas::search;

struct greedy_options {
  std::uint64_t seed = 0;
  checkpoint_options checkpoint{};
};

class greedy_method {
 public:
  struct state {
    std::size_t layer = 0;        // layers settled
    std::vector<int> current;     // the architecture so far
    evaluation_record record;

    template <class Archive>
    friend void fields(Archive& ar, state& s) {
      ar(s.layer, s.current, s.record);
    }
  };
  using result = arch_search_result;
  static constexpr std::string_view kind = "greedy";
  static constexpr std::string_view title = "greedy search";

  explicit greedy_method(const greedy_options& o) : o_(o) {}

  std::uint64_t fingerprint(const pcnas::cost::constraint& k) const {
    return fingerprint_builder{}.add(std::string_view(kind)).add(o_.seed).add(k).value();
  }
  state initial_state(const pcnas::cost::constraint& k) const {
    pcnas::rng r = stream(o_.seed, kind, 0);  // a stream keyed by the method's name
    return {0, k.sample(r), {}};
  }
  bool done(const state& s, const pcnas::cost::constraint& k) const { return s.layer >= k.num_layers(); }
  std::size_t training_steps(const state&) const { return 0; }
  std::string start_message(const pcnas::cost::constraint&) const { return "greedy search"; }
  std::string position(const state& s) const { return "after layer " + std::to_string(s.layer); }
  std::string check_resumed(const state& s, const pcnas::cost::constraint& k) const {
    return s.current.size() == k.num_layers() ? "" : "the architecture has the wrong number of layers";
  }

  template <class Supernet, class Callbacks>
  unit advance(Supernet& net, const pcnas::cost::constraint& k, state& s, Callbacks& cb) const {
    std::vector<int> best = s.current;
    double best_accuracy = -1.0;
    for (std::size_t c = 0; c < k.num_choices(s.layer); ++c) {
      std::vector<int> a = s.current;
      a[s.layer] = static_cast<int>(c);
      if (!k.is_feasible(a)) continue;
      if (!s.record.contains(a)) s.record.evaluate(net, k, a, true, 0, cb);
      for (const auto& e : s.record.all())
        if (e.arch == a && e.accuracy > best_accuracy) {
          best_accuracy = e.accuracy;
          best = a;
        }
    }
    s.current = best;
    ++s.layer;
    return unit::milestone;
  }

  template <class Callbacks>
  result finish(const pcnas::cost::constraint& k, const state& s, bool resumed, Callbacks&) const {
    result r = s.record.result(k, 5);
    r.resumed = resumed;
    return r;
  }

 private:
  greedy_options o_;
};

}  // namespace pcnas_test
