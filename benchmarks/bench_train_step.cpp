// Training steps and evaluation batches of one fmnist path on the Thrust backend (OpenMP device
// system here; CUDA in bench_train_step.cu), beside the Eigen backend when this build has it:
// median seconds per step after warm-up, images/s, and the ratio. Synthetic inputs, so data
// loading is not measured. Takes the command line of `pcnas bench`, so that
// benchmarks/compare_pytorch --pcnas can run it beside PyTorch:
//   bench_train_step [bench fmnist] [--arch TOKENS|smallest|largest|random] [--batch N]
//                    [--threads N] [--steps N] [--warmup N] [--loss-every K] [--json]
// Training is timed as a device loop runs it: K steps between host waits (the trainer reads the
// loss every K steps), the median over blocks of K steps divided by K. --loss-every 1 times
// every step with a wait after it, as a loop that reads each loss would run.
// The JSON (last line with --json) describes the Thrust backend; Eigen's numbers sit under "eigen".
#include <pcnas/backend/thrust.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/space/presets.hpp>

#if defined(PCNAS_BENCH_WITH_EIGEN)
#include <pcnas/backend/eigen.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

using namespace pcnas;
using S = presets::fmnist;

struct bench_options {
  std::string arch = "largest";
  std::size_t batch = 128;
  int threads = 0;
  int steps = 30;
  int warmup = 3;
  std::size_t loss_every = 10;
  bool json = false;
};

data::dataset synthetic_fmnist(std::size_t count) {
  data::dataset ds;
  ds.count = count;
  ds.height = ds.width = 28;
  ds.channels = 1;
  ds.num_classes = 10;
  ds.norm = data::identity_normalization(1);
  rng r(1);
  ds.images.resize(count * 784);
  for (auto& v : ds.images) v = static_cast<float>(r.uniform01());
  ds.labels.resize(count);
  for (auto& l : ds.labels) l = static_cast<std::uint8_t>(r.uniform_index(10));
  return ds;
}

// smallest / largest: the fewest / most MACs in every layer; random: seed 0; else the tokens.
space::architecture<S> pick_arch(const std::string& text) {
  if (text != "smallest" && text != "largest" && text != "random") return space::parse_arch<S>(text);
  space::architecture<S> a{};
  rng r(0);
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    std::size_t pick = 0;
    for (std::size_t c = 1; c < S::num_choices[l]; ++c) {
      const auto m = S::choice_costs[l][c].macs, best = S::choice_costs[l][pick].macs;
      if (text == "smallest" ? m < best : m > best) pick = c;
    }
    a[l] = static_cast<int>(text == "random" ? r.uniform_index(S::num_choices[l]) : pick);
  }
  return a;
}

struct measured {
  std::string backend;
  double train_s = 0, eval_s = 0;
};

template <class B>
measured measure(B& b, const bench_options& o, const space::architecture<S>& arch, const data::dataset& ds) {
  nn::trainer_options to{.batch_size = o.batch, .eval_batch_size = o.batch};
  to.loss_read_interval = o.loss_every;
  nn::supernet_trainer<B, S> t(b, ds, ds, to);
  // Seconds per call: the median over `blocks` blocks of `per_block` calls, one wait per block.
  auto median_of = [&](int blocks, std::size_t per_block, auto&& f) {
    for (int i = 0; i < o.warmup; ++i) f();
    b.synchronize();
    std::vector<double> s;
    for (int i = 0; i < blocks; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t k = 0; k < per_block; ++k) f();
      b.synchronize();
      s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                  static_cast<double>(per_block));
    }
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
    return s[s.size() / 2];
  };
  measured m{b.name()};
  const int blocks = std::max(1, (o.steps + static_cast<int>(o.loss_every) - 1) / static_cast<int>(o.loss_every));
  m.train_s = median_of(blocks, o.loss_every, [&] { (void)t.train_step(arch, 0.01); });
  m.eval_s = median_of(o.steps, 1, [&] { t.forward_only(arch, o.batch); });
  return m;
}

std::string json_string(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return q + "\"";
}

bench_options parse(int argc, char** argv) {
  bench_options o;
  int i = 1;
  // `bench fmnist`, as compare_pytorch calls the CLI.
  if (i < argc && std::string(argv[i]) == "bench") ++i;
  if (i < argc && std::string(argv[i]) == "fmnist") ++i;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--arch") o.arch = value();
    else if (a == "--batch") o.batch = std::stoul(value());
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--steps") o.steps = std::stoi(value());
    else if (a == "--warmup") o.warmup = std::stoi(value());
    else if (a == "--loss-every") o.loss_every = std::stoul(value());
    else if (a == "--json") o.json = true;
    else throw std::invalid_argument("unknown argument " + a);
  }
  if (o.batch < 1 || o.steps < 1 || o.warmup < 0 || o.loss_every < 1)
    throw std::invalid_argument("--batch, --steps and --loss-every must be positive, --warmup at least 0");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const bench_options o = parse(argc, argv);
  const auto arch = pick_arch(o.arch);
  const auto ds = synthetic_fmnist(std::max<std::size_t>(1024, 2 * o.batch));
  const double macs = static_cast<double>(cost::arch_cost<S>(arch).macs);

  backend::thrust::backend tb({.threads = o.threads});
  const measured t = measure(tb, o, arch, ds);
  std::vector<measured> rows{t};
#if defined(PCNAS_BENCH_WITH_EIGEN)
  backend::eigen::backend eb({.threads = o.threads});
  rows.push_back(measure(eb, o, arch, ds));
#endif

  std::FILE* table = o.json ? stderr : stdout;
  std::fprintf(table, "fmnist %s, batch %zu, median of %d steps after %d warm-up, a host wait every %zu steps\n",
               space::to_string<S>(arch).c_str(), o.batch, o.steps, o.warmup, o.loss_every);
  std::fprintf(table, "%-52s %12s %12s %10s\n", "backend", "train img/s", "eval img/s", "GFLOP/s");
  for (const auto& m : rows)
    std::fprintf(table, "%-52s %12.1f %12.1f %10.2f\n", m.backend.c_str(), double(o.batch) / m.train_s,
                 double(o.batch) / m.eval_s, 6.0 * macs * double(o.batch) / m.train_s / 1e9);
  if (rows.size() > 1)
    std::fprintf(table, "%-52s %12.2f %12.2f\n", "thrust / eigen", rows[1].train_s / t.train_s, rows[1].eval_s / t.eval_s);

  if (o.json) {
    std::string j = "{\"space\": \"fmnist\", \"arch\": " + json_string(space::to_string<S>(arch)) +
                    ", \"batch\": " + std::to_string(o.batch) + ", \"steps\": " + std::to_string(o.steps) +
                    ", \"backend\": " + json_string(t.backend) +
                    ", \"train_images_per_s\": " + std::to_string(double(o.batch) / t.train_s) +
                    ", \"eval_images_per_s\": " + std::to_string(double(o.batch) / t.eval_s);
    if (rows.size() > 1)
      j += ", \"eigen\": {\"backend\": " + json_string(rows[1].backend) +
           ", \"train_images_per_s\": " + std::to_string(double(o.batch) / rows[1].train_s) +
           ", \"eval_images_per_s\": " + std::to_string(double(o.batch) / rows[1].eval_s) + "}";
    std::printf("%s}\n", j.c_str());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step: %s\n", e.what());
  return 2;
}
