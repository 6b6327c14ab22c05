// micro_study: the experiments that judge PC-NAS exactly on fmnist_micro, whose 400 architectures
// can all be trained alone. Each command appends one JSON record per finished unit of work
// (an architecture trained, a supernet trained and scored) to a file under results/micro/, and
// skips the units already there: kill it at any moment and run the same command again.
//
//   micro_study ground-truth --seed 0                 every architecture trained alone
//   micro_study ground-truth --seed 1 --subset fifth  every fifth, a second time (seed noise)
//   micro_study ranking --seeds 0-9                   uniform one-shot and PC-NAS supernets
//   micro_study fading --seeds 0-2                    supernets on nested subspaces
//   micro_study report                                tables (Markdown) and plots (SVG)
#include "study.hpp"

#include <pcnas/backend/eigen.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/search/spos_evolution.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <set>

namespace micro_study {

int report(const std::filesystem::path& dir);  // report.cpp

namespace {

using backend_t = pcnas::backend::eigen::backend;
using trainer_t = pcnas::nn::supernet_trainer<backend_t, space>;

struct study_data {
  pcnas::data::dataset train, val, test;
};

study_data load_data(const std::string& dir) {
  namespace d = pcnas::data;
  const std::filesystem::path root = dir.empty() ? d::default_data_dir() : std::filesystem::path(dir);
  auto parts = d::split_train_val(d::load_fashion_mnist(root, d::split::train), held_out_images, split_seed);
  return {std::move(parts.train), std::move(parts.val), d::load_fashion_mnist(root, d::split::test)};
}

pcnas::nn::trainer_options trainer_settings(std::uint64_t seed, std::size_t validation_images) {
  return {.batch_size = batch_size,
          .recalibration_batches = recalibration_batches,
          .validation_images = validation_images,
          .seed = seed,
          .augment = {.crop_padding = 2, .horizontal_flip = true}};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// "0-9", "3", "0,2,5".
std::vector<std::uint64_t> parse_seeds(const std::string& text) {
  std::vector<std::uint64_t> seeds;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = std::min(text.find(',', at), text.size());
    const std::string part = text.substr(at, comma - at);
    const auto dash = part.find('-');
    try {
      std::size_t used = 0;
      if (dash == std::string::npos) {
        seeds.push_back(std::stoull(part, &used));
        if (used != part.size()) throw std::invalid_argument(part);
      } else {
        const auto lo = std::stoull(part.substr(0, dash)), hi = std::stoull(part.substr(dash + 1));
        if (hi < lo || hi - lo > 1000) throw std::invalid_argument(part);
        for (auto s = lo; s <= hi; ++s) seeds.push_back(s);
      }
    } catch (const std::exception&) {
      throw CLI::ValidationError("--seeds", "expected seeds as 0-9, 3 or 0,2,5; got '" + text + "'");
    }
    at = comma + 1;
  }
  return seeds;
}

// Shared-weight accuracy of each architecture: BN recalibrated on the fixed training batches,
// then accuracy on all 5,000 held-out images.
nlohmann::json score_all(trainer_t& net, const study_data& d, const std::vector<std::size_t>& indices) {
  nlohmann::json shared = nlohmann::json::array();
  for (std::size_t i : indices) {
    const auto arch = arch_at(i);
    net.recalibrate(arch);
    shared.push_back({i, net.evaluate_on(arch, d.val, held_out_images)});
  }
  return shared;
}

std::vector<std::size_t> feasible_indices(const pcnas::cost::constraint& k) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < num_archs; ++i)
    if (k.is_feasible(arch_at(i))) out.push_back(i);
  return out;
}

std::size_t supernet_steps(const study_data& d) {
  return supernet_steps_factor * standalone_epochs * ((d.train.count + batch_size - 1) / batch_size);
}

// --------------------------------------------------------------------------------- ground truth

struct ground_truth_options {
  std::uint64_t seed = 0;
  std::string subset = "all";
  int threads = 1;
  std::size_t max = 0;
  std::vector<std::size_t> only;
  std::string file;
  std::string data;
};

int ground_truth(const ground_truth_options& o) {
  if (o.subset != "all" && o.subset != "fifth") throw CLI::ValidationError("--subset", "must be all or fifth");
  const record_file file(o.file.empty() ? default_results_dir() / "ground_truth.jsonl" : std::filesystem::path(o.file));
  std::set<std::size_t> done;
  for (const auto& r : file.read())
    if (r.at("seed").get<std::uint64_t>() == o.seed) done.insert(r.at("arch_index").get<std::size_t>());
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < num_archs; i += (o.subset == "all" ? 1 : 5))
    if (!done.count(i) && (o.only.empty() || std::find(o.only.begin(), o.only.end(), i) != o.only.end()))
      pending.push_back(i);
  if (o.max && pending.size() > o.max) pending.resize(o.max);
  std::fprintf(stderr, "ground truth, seed %llu: %zu architectures done, %zu to train (%d epochs each) into %s\n",
               static_cast<unsigned long long>(o.seed), done.size(), pending.size(), standalone_epochs,
               file.path().c_str());
  if (pending.empty()) return 0;

  const auto d = load_data(o.data);
  backend_t b({.threads = o.threads});
  pcnas::search::progress_printer progress;
  const auto t_all = std::chrono::steady_clock::now();
  for (std::size_t n = 0; n < pending.size(); ++n) {
    const std::size_t index = pending[n];
    const auto arch = arch_at(index);
    const auto t0 = std::chrono::steady_clock::now();
    trainer_t net(b, d.train, d.val, trainer_settings(o.seed, held_out_images));
    const std::size_t steps = net.batches_per_epoch() * standalone_epochs;
    const pcnas::search::cosine_schedule lr{.base_lr = base_lr, .total_steps = steps};
    double tail = 0.0;
    for (std::size_t s = 0; s < steps; ++s) {
      const double loss = net.train_step(arch, lr(s));
      if (s >= steps - steps / 10) tail += loss;
    }
    const double val = net.evaluate(arch);
    const auto test = net.evaluate_stats(arch, d.test, 0);
    file.append({{"kind", "standalone"},
                 {"arch_index", index},
                 {"arch", arch_text(arch)},
                 {"seed", o.seed},
                 {"epochs", standalone_epochs},
                 {"steps", steps},
                 {"final_train_loss", tail / static_cast<double>(steps / 10)},
                 {"val_accuracy", val},
                 {"test_accuracy", test.accuracy()},
                 {"test_loss", test.mean_loss()},
                 {"macs", macs_model().predict(arch)},
                 {"threads", b.threads()},
                 {"seconds", seconds_since(t0)}});
    char line[200];
    std::snprintf(line, sizeof line, "[%zu/%zu] #%zu %s: val %.2f %%, test %.2f %% (%.0f s; %.0f s so far)", n + 1,
                  pending.size(), index, arch_text(arch).c_str(), 100 * val, 100 * test.accuracy(), seconds_since(t0),
                  seconds_since(t_all));
    progress.message(line);
  }
  return 0;
}

// ----------------------------------------------------------------------- supernets: the ranking

struct supernet_options {
  std::string seeds = "0-9";
  int threads = 1;
  std::string file;
  std::string data;
  std::string kinds = "uniform,pcnas";
  std::vector<std::size_t> sizes{subspace_sizes.begin(), subspace_sizes.end()};
};

bool has_record(const std::vector<nlohmann::json>& records, const std::string& kind, std::uint64_t seed,
                std::size_t size = 0) {
  for (const auto& r : records)
    if (r.at("kind") == kind && r.at("seed").get<std::uint64_t>() == seed && r.value("size", std::size_t{0}) == size)
      return true;
  return false;
}

nlohmann::json scored(const pcnas::search::arch_search_result& r) {
  return {{"arch_index", index_of(r.best_arch)},
          {"arch", arch_text(r.best_arch)},
          {"shared_accuracy", r.best_accuracy},
          {"evaluations", r.evaluations},
          {"exhausted", r.exhausted}};
}

// Uniform one-shot training under the MACs limit, every feasible architecture scored, and the
// two baselines' searches on that supernet (evolution and random search, each given the
// evaluations PC-NAS's nominal procedure makes).
nlohmann::json run_uniform(backend_t& b, const study_data& d, std::uint64_t seed) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto k = macs_constraint();
  trainer_t net(b, d.train, d.val, trainer_settings(seed, search_validation_images));
  const std::size_t steps = supernet_steps(d);
  const auto training = pcnas::search::train_uniform(net, k, {.total_steps = steps, .base_lr = base_lr, .seed = seed},
                                                     pcnas::search::progress_callback{});
  const double train_seconds = seconds_since(t0);
  const auto shared = score_all(net, d, feasible_indices(k));
  const std::size_t budget = pcnas::search::pc_nas_nominal_evaluations(k.choices_per_layer(), pool_size, completions);
  const auto evolution = pcnas::search::evolution_search(net, k, {.evaluations = budget, .seed = seed});
  const auto random = pcnas::search::random_search(net, k, {.evaluations = budget, .seed = seed});
  return {{"kind", "uniform"},          {"seed", seed},
          {"steps", steps},             {"final_train_loss", training.final_loss},
          {"macs_limit", k.limit()},    {"shared", shared},
          {"evolution", scored(evolution)}, {"random", scored(random)},
          {"train_seconds", train_seconds}, {"seconds", seconds_since(t0)}};
}

// PC-NAS under the MACs limit at the same training budget; then every feasible architecture
// scored with its final supernet.
nlohmann::json run_pc_nas(backend_t& b, const study_data& d, std::uint64_t seed) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto k = macs_constraint();
  trainer_t net(b, d.train, d.val, trainer_settings(seed, search_validation_images));
  const std::size_t steps = supernet_steps(d);
  const auto r = pcnas::search::pc_nas_search(
      net, k, {.pool_size = pool_size, .completions = completions, .total_steps = steps, .base_lr = base_lr, .seed = seed},
      pcnas::search::progress_callback{});
  const double search_seconds = seconds_since(t0);
  // The subspace the last interval trained: the pool of prefixes before the last pool step,
  // extended by every feasible choice of the last layer.
  std::vector<std::size_t> last_interval;
  const auto& before_last = r.history.at(num_layers - 2).pool;
  for (const auto& m : before_last)
    for (std::size_t c = 0; c < space::num_choices[num_layers - 1]; ++c) {
      auto a = m.prefix;
      a.push_back(static_cast<int>(c));
      if (k.is_feasible(a)) last_interval.push_back(index_of(a));
    }
  nlohmann::json pool = nlohmann::json::array();
  for (const auto& m : r.final_pool) pool.push_back({index_of(m.prefix), m.potential});
  return {{"kind", "pcnas"},
          {"seed", seed},
          {"steps", steps},
          {"macs_limit", k.limit()},
          {"found", {{"arch_index", index_of(r.best_arch)},
                     {"arch", arch_text(r.best_arch)},
                     {"shared_accuracy", r.best_accuracy},
                     {"evaluations", r.evaluations}}},
          {"final_pool", pool},
          {"last_interval_subspace", last_interval},
          {"shared", score_all(net, d, feasible_indices(k))},
          {"search_seconds", search_seconds},
          {"seconds", seconds_since(t0)}};
}

int ranking(const supernet_options& o) {
  const record_file file(o.file.empty() ? default_results_dir() / "supernets.jsonl" : std::filesystem::path(o.file));
  const auto seeds = parse_seeds(o.seeds);
  std::optional<study_data> d;
  backend_t b({.threads = o.threads});
  for (const auto seed : seeds)
    for (const std::string kind : {"uniform", "pcnas"}) {
      if (o.kinds.find(kind) == std::string::npos || has_record(file.read(), kind, seed)) continue;
      if (!d) d = load_data(o.data);
      std::fprintf(stderr, "%s supernet, seed %llu\n", kind.c_str(), static_cast<unsigned long long>(seed));
      file.append(kind == "uniform" ? run_uniform(b, *d, seed) : run_pc_nas(b, *d, seed));
    }
  return 0;
}

// ------------------------------------------------------------------------ supernets: the fading

// A uniform supernet trained on one nested subspace, for as many steps as the ranking's
// supernets (the total held equal), every member scored.
int fading(const supernet_options& o) {
  const record_file file(o.file.empty() ? default_results_dir() / "supernets.jsonl" : std::filesystem::path(o.file));
  std::optional<study_data> d;
  backend_t b({.threads = o.threads});
  for (const auto seed : parse_seeds(o.seeds))
    for (const std::size_t size : o.sizes) {
      if (has_record(file.read(), "fading", seed, size)) continue;
      if (!d) d = load_data(o.data);
      std::fprintf(stderr, "supernet on %zu architectures, seed %llu\n", size, static_cast<unsigned long long>(seed));
      const auto t0 = std::chrono::steady_clock::now();
      const auto k = subspace_constraint(size);
      trainer_t net(b, d->train, d->val, trainer_settings(seed, search_validation_images));
      const std::size_t steps = supernet_steps(*d);
      const auto training = pcnas::search::train_uniform(net, k, {.total_steps = steps, .base_lr = base_lr, .seed = seed},
                                                         pcnas::search::progress_callback{});
      std::vector<std::size_t> members;
      for (std::size_t i = 0; i < num_archs; ++i)
        if (in_subspace(arch_at(i), size)) members.push_back(i);
      if (members.size() != size) throw std::logic_error("subspace size mismatch");
      file.append({{"kind", "fading"},
                   {"seed", seed},
                   {"size", size},
                   {"steps", steps},
                   {"final_train_loss", training.final_loss},
                   {"shared", score_all(net, *d, members)},
                   {"seconds", seconds_since(t0)}});
    }
  return 0;
}

}  // namespace
}  // namespace micro_study

int main(int argc, char** argv) {
  using namespace micro_study;
  CLI::App app{"The fmnist_micro ranking study: ground truth, supernet rankings, posterior fading, report. "
               "Every command resumes from its result file; run it again after an interruption."};
  app.require_subcommand(1);

  ground_truth_options g;
  auto* gt = app.add_subcommand("ground-truth", "Train every architecture (or every fifth) alone, 2 epochs each");
  gt->add_option("--seed", g.seed, "Training seed (weights, order, augmentation)")->capture_default_str();
  gt->add_option("--subset", g.subset, "all (400) or fifth (80: indices 0, 5, 10, ...)")->capture_default_str();
  gt->add_option("--threads", g.threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 64));
  gt->add_option("--max", g.max, "Stop after this many architectures (0: all)");
  gt->add_option("--only", g.only, "Train only these architecture indices (0-399)")->check(CLI::Range(0, 399));
  gt->add_option("--file", g.file, "Result file (default results/micro/ground_truth.jsonl)");
  gt->add_option("--data", g.data, "Fashion-MNIST directory");

  supernet_options s;
  auto* rk = app.add_subcommand("ranking", "Uniform one-shot and PC-NAS supernets under the MACs limit, scored");
  auto* fd = app.add_subcommand("fading", "Uniform supernets on nested subspaces of 1, 4, 16, 64, 400 architectures");
  for (auto* c : {rk, fd}) {
    c->add_option("--seeds", s.seeds, "Seeds: 0-9, 3 or 0,2,5")->capture_default_str();
    c->add_option("--threads", s.threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 64));
    c->add_option("--file", s.file, "Result file (default results/micro/supernets.jsonl)");
    c->add_option("--data", s.data, "Fashion-MNIST directory");
  }
  rk->add_option("--kinds", s.kinds, "uniform, pcnas or both")->capture_default_str();
  fd->add_option("--sizes", s.sizes, "Subspace sizes (of 1, 4, 16, 64, 400)");

  std::string dir = default_results_dir().string();
  auto* rp = app.add_subcommand("report", "Print the tables and write the plots (SVG) beside the results");
  rp->add_option("--dir", dir, "Results directory")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*gt) return ground_truth(g);
    if (*rk) return ranking(s);
    if (*fd) return fading(s);
    return report(dir);
  } catch (const CLI::Error& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "micro_study: %s\n", e.what());
    return 1;
  }
}
