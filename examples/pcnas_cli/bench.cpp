// `pcnas bench`: images per second of training steps and of evaluation batches of one path,
// median over timed repeats after warm-up.
#include "commands.hpp"
#include "common.hpp"

#ifdef PCNAS_CLI_WITH_EIGEN
#include <pcnas/nn/supernet_trainer.hpp>
#endif

#include <memory>

namespace pcnas_cli {
namespace {

struct bench_options {
  std::string space;
  std::string arch = "random";
  int batch = 128;
  int steps = 20;
  int warmup = 3;
  int threads = 0;
  std::string data;
  bool json = false;
};

#ifdef PCNAS_CLI_WITH_EIGEN
template <class S>
int bench(const bench_options& o) {
  if (o.batch < 1) throw usage_error("--batch must be at least 1");
  if (o.steps < 1) throw usage_error("--steps must be at least 1");
  if (o.warmup < 0) throw usage_error("--warmup must be 0 or more");
  check_threads(o.threads);
  const auto arch = parse_arch_arg<S>(o.arch);
  const auto data = load_fmnist(o.data, 5000, 0);
  auto b = make_backend(o.threads);
  pcnas::nn::supernet_trainer<cpu_backend, S> trainer(
      b, data.train, data.val,
      {.batch_size = static_cast<std::size_t>(o.batch), .eval_batch_size = static_cast<std::size_t>(o.batch)});
  const auto time_it = [&](auto&& f) {
    for (int i = 0; i < o.warmup; ++i) f();
    std::vector<double> s;
    for (int i = 0; i < o.steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      b.synchronize();
      s.push_back(seconds_since(t0));
    }
    return pcnas::cost::median(s);
  };
  const double train_s = time_it([&] { (void)trainer.train_step(arch, 0.01); });
  const double eval_s = time_it([&] { trainer.forward_only(arch, static_cast<std::size_t>(o.batch)); });
  const auto cost = pcnas::cost::arch_cost<S>(arch);
  // Training is counted as three forward passes' worth of multiply-adds (forward, two backward).
  const double train_gflops = 3.0 * 2.0 * static_cast<double>(cost.macs) * o.batch / train_s / 1e9;
  const double eval_gflops = 2.0 * static_cast<double>(cost.macs) * o.batch / eval_s / 1e9;
  const nlohmann::json result = {{"space", std::string(S::name)},
                                 {"arch", pcnas::space::to_string<S>(arch)},
                                 {"batch", o.batch},
                                 {"threads", b.threads()},
                                 {"backend", b.name()},
                                 {"steps", o.steps},
                                 {"train_images_per_s", o.batch / train_s},
                                 {"eval_images_per_s", o.batch / eval_s},
                                 {"train_step_ms", 1e3 * train_s},
                                 {"eval_batch_ms", 1e3 * eval_s},
                                 {"train_gflops", train_gflops},
                                 {"eval_gflops", eval_gflops},
                                 {"macs", cost.macs}};
  std::printf("%s [%s] batch %d, %s\n", std::string(S::name).c_str(), pcnas::space::to_string<S>(arch).c_str(), o.batch,
              b.name().c_str());
  std::printf("  train: %8.1f images/s (median step %.1f ms, %.1f GFLOP/s)\n", o.batch / train_s, 1e3 * train_s,
              train_gflops);
  std::printf("  eval:  %8.1f images/s (median batch %.1f ms, %.1f GFLOP/s)\n", o.batch / eval_s, 1e3 * eval_s,
              eval_gflops);
  if (o.json) std::printf("%s\n", result.dump().c_str());
  return 0;
}
#endif

}  // namespace

command add_bench(CLI::App& app) {
  auto o = std::make_shared<bench_options>();
  auto* cmd = app.add_subcommand("bench", "Measure training and evaluation throughput (images/s) of one path");
  cmd->add_option("space", o->space, "fmnist or fmnist_micro")->required();
  cmd->add_option("--arch", o->arch, arch_help)->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch size")->check(whole_number(1, 65536))->capture_default_str();
  cmd->add_option("--steps", o->steps, "Timed repeats (the median counts)")
      ->check(whole_number(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed repeats first")->check(whole_number(0, 1000000))->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(whole_number(0, 65536))->capture_default_str();
  cmd->add_option("--data", o->data, "Fashion-MNIST directory");
  cmd->add_flag("--json", o->json, "End with one JSON object (train_images_per_s, eval_images_per_s, ...)");
  return {cmd, [o] {
#ifdef PCNAS_CLI_WITH_EIGEN
            return with_trainable_space(o->space, [&]<class S>(std::type_identity<S>) { return bench<S>(*o); });
#else
            throw usage_error("this pcnas was built without Eigen: benchmarks are not available");
            return 1;
#endif
          }};
}

}  // namespace pcnas_cli
