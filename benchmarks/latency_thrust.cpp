// A latency table of the fmnist space on the Thrust backend (OpenMP here; the GPU in
// latency_thrust.cu), built and checked in one run: every (layer, choice) timed alone, and K
// random architectures end to end in the same rounds; the table's predictions against those
// measurements are the validation. Writes the table (JSON, with its provenance) and prints the
// errors.  Usage: latency_thrust OUT_TABLE.json [--batch N] [--validate K] [--repeats N]
//                 [--threads N] [--device NAME]
#include <pcnas/backend/thrust.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/json/latency_table.hpp>
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/nn/supernet.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/presets.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
  using namespace pcnas;
  using S = presets::fmnist;
  if (argc < 2) throw std::invalid_argument("usage: latency_thrust OUT_TABLE.json [--batch N] [--validate K] ...");
  const std::string out = argv[1];
  int batch = 32, validate = 20, repeats = 21, threads = 0;
  std::string device;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--batch") batch = std::stoi(v);
    else if (a == "--validate") validate = std::stoi(v);
    else if (a == "--repeats") repeats = std::stoi(v);
    else if (a == "--threads") threads = std::stoi(v);
    else if (a == "--device") device = v;
    else throw std::invalid_argument("unknown argument " + a);
  }
  if (validate < 2) throw std::invalid_argument("--validate needs at least 2 architectures");

  backend::thrust::backend b({.threads = threads});
  nn::context<backend::thrust::backend> ctx(b);
  nn::supernet<backend::thrust::backend, S> net(b, {.seed = 0});
  std::vector<space::architecture<S>> archs(static_cast<std::size_t>(validate));
  rng r(1);
  for (auto& a : archs)
    for (std::size_t l = 0; l < S::num_layers; ++l) a[l] = static_cast<int>(r.uniform_index(S::num_choices[l]));

  // The backend's synchronize() on a GPU waits for the device, which the profiler's
  // context-switch check would take for a disturbance: no retries there.
  const bool gpu = b.name().find("CUDA") != std::string::npos;
  const auto p = nn::profile_latency(b, net, ctx, std::span<const space::architecture<S>>(archs),
                                     {.batch = batch, .warmup = 3, .repeats = repeats, .retries = gpu ? 0 : 3,
                                      .device = device.empty() ? (gpu ? b.name() : std::string()) : device,
                                      .seed = 0, .progress = {}});
  io::save_latency_table(out, p.table);

  std::vector<double> predicted;
  for (const auto& a : archs) predicted.push_back(p.table.model.predict(a));
  const auto s = cost::summarize_predictions(predicted, p.end_to_end);
  std::printf("latency table of fmnist on %s, batch %d: written to %s\n", b.name().c_str(), batch, out.c_str());
  std::printf("fixed part %.4f ms; %d architectures end to end: %.4f .. %.4f ms\n", p.table.model.fixed, validate,
              *std::min_element(p.end_to_end.begin(), p.end_to_end.end()),
              *std::max_element(p.end_to_end.begin(), p.end_to_end.end()));
  std::printf("table vs end to end (uncalibrated): rmspe %.1f %%, within 5 %%: %.0f %%, within 10 %%: %.0f %%, "
              "mean bias %+.1f %%\n",
              100 * s.rmspe, 100 * s.within_5, 100 * s.within_10, 100 * s.mean_bias);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "latency_thrust: %s\n", e.what());
  return 2;
}
