// micro_study report: reads the study's result files and prints what they show — the ground
// truth and its seed noise, ranking quality of uniform one-shot and PC-NAS supernets, the fading
// curve, the methods' found architectures judged by their stand-alone rank — as Markdown
// (stdout and report.md), with three SVG figures beside the results.
#include "study.hpp"
#include "svg_plot.hpp"

#include <pcnas/eval/paired_test.hpp>
#include <pcnas/eval/ranking.hpp>

#include <cmath>
#include <cstdarg>
#include <numeric>

namespace micro_study {
namespace {

struct stats {
  double mean = NAN, sd = NAN;
  std::size_t n = 0;
};
// Mean and sample sd of the finite values (a τ over too few architectures is NaN and left out).
stats summarize(const std::vector<double>& all) {
  std::vector<double> v;
  for (double x : all)
    if (std::isfinite(x)) v.push_back(x);
  stats s;
  s.n = v.size();
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

// Markdown goes to stdout and to report.md.
class printer {
 public:
  explicit printer(const std::filesystem::path& file) : file_(file) {}
  void operator()(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    char buffer[4096];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    std::fputs(buffer, stdout);
    file_ << buffer;
  }

 private:
  std::ofstream file_;
};

std::string pm(const stats& s, double scale = 1.0, int decimals = 3) {
  if (s.n == 0) return "—";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f ± %.*f", decimals, scale * s.mean, decimals, scale * s.sd);
  return b;
}

using accuracy_map = std::map<std::size_t, double>;

accuracy_map shared_of(const nlohmann::json& record) {
  accuracy_map m;
  for (const auto& p : record.at("shared")) m[p.at(0).get<std::size_t>()] = p.at(1).get<double>();
  return m;
}

// Paired vectors (truth, shared) over the given indices that both know.
struct paired {
  std::vector<double> truth, shared;
  std::vector<std::size_t> index;
};
paired pair_up(const accuracy_map& truth, const accuracy_map& shared, const std::vector<std::size_t>* only = nullptr) {
  paired p;
  for (const auto& [i, s] : shared) {
    if (only && std::find(only->begin(), only->end(), i) == only->end()) continue;
    if (const auto t = truth.find(i); t != truth.end()) {
      p.truth.push_back(t->second);
      p.shared.push_back(s);
      p.index.push_back(i);
    }
  }
  return p;
}

double tau(const paired& p) { return p.truth.size() >= 2 ? pcnas::eval::kendall_tau_b(p.truth, p.shared) : NAN; }

// Share of the given architectures that are better alone than `index` (0 %: the best).
double share_better(const accuracy_map& truth, const std::vector<std::size_t>& among, std::size_t index) {
  std::size_t better = 0;
  for (std::size_t i : among)
    if (truth.at(i) > truth.at(index)) ++better;
  return 100.0 * static_cast<double>(better) / static_cast<double>(among.size());
}

}  // namespace

int report(const std::filesystem::path& dir) {
  // Records may be spread over several files (ground_truth*.jsonl, supernets*.jsonl) when parts
  // of the study ran in parallel processes.
  std::vector<nlohmann::json> ground, supernets;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const auto name = path.filename().string();
    if (!name.ends_with(".jsonl")) continue;
    auto& into = name.starts_with("ground_truth") ? ground : supernets;
    if (name.starts_with("ground_truth") || name.starts_with("supernets"))
      for (auto& r : record_file(path).read()) into.push_back(std::move(r));
  }
  printer out(dir / "report.md");
  std::map<std::uint64_t, accuracy_map> test_by_seed, val_by_seed;
  for (const auto& r : ground) {
    const auto seed = r.at("seed").get<std::uint64_t>();
    const auto i = r.at("arch_index").get<std::size_t>();
    test_by_seed[seed][i] = r.at("test_accuracy").get<double>();
    val_by_seed[seed][i] = r.at("val_accuracy").get<double>();
  }
  const accuracy_map& truth = test_by_seed[0];      // stand-alone test accuracy, seed 0
  const accuracy_map& truth_val = val_by_seed[0];   // on the held-out images the supernets are scored on

  out("# fmnist_micro: PC-NAS judged against every architecture trained alone\n\n");
  out("Recipe (study version %d): split 55,000 / 5,000 held out (split seed 0), batch %zu, SGD with Nesterov "
      "momentum 0.9, weight decay 4e-5, label smoothing 0.1, crops (padding 2) and flips, cosine from %.2g; "
      "stand-alone %d epochs; supernets %zu× the stand-alone steps; PC-NAS P = %zu, S = %zu; shared-weight "
      "accuracy after BN recalibration on %zu training batches, on all %zu held-out images.\n\n",
      study_version, batch_size, base_lr, standalone_epochs, supernet_steps_factor, pool_size, completions,
      recalibration_batches, held_out_images);

  // ---------------------------------------------------------------- ground truth and seed noise
  out("## Ground truth\n\n");
  {
    std::vector<double> acc;
    for (const auto& [i, a] : truth) acc.push_back(a);
    std::sort(acc.begin(), acc.end());
    const double spread = summarize(acc).sd;
    out("%zu of %zu architectures trained alone (seed 0).", truth.size(), num_archs);
    if (!acc.empty())
      out(" Test accuracy: min %.2f %%, median %.2f %%, max %.2f %%, standard deviation across architectures "
          "%.2f points.",
          100 * acc.front(), 100 * acc[acc.size() / 2], 100 * acc.back(), 100 * spread);
    out("\n\n");
    const auto p = pair_up(test_by_seed[0], test_by_seed[1]);
    if (p.truth.size() >= 2) {
      std::vector<double> diff;
      for (std::size_t k = 0; k < p.truth.size(); ++k) diff.push_back(p.truth[k] - p.shared[k]);
      const double noise = summarize(diff).sd / std::sqrt(2.0);
      out("Seed noise, from %zu architectures trained with seeds 0 and 1: one run's test accuracy varies by "
          "%.2f points (sd of the difference / √2); Kendall τ between the two seeds %.3f, Spearman ρ %.3f "
          "(the ceiling any proxy can reach against a one-seed ground truth). The spread across architectures "
          "is %.1f× the seed noise.\n\n",
          p.truth.size(), 100 * noise, pcnas::eval::kendall_tau_b(p.truth, p.shared),
          pcnas::eval::spearman_rho(p.truth, p.shared), spread / noise);
    }
  }

  // ---------------------------------------------------------------- ranking quality
  std::map<std::uint64_t, const nlohmann::json*> uniform, pcnas;
  std::map<std::pair<std::uint64_t, std::size_t>, const nlohmann::json*> fading;
  for (const auto& r : supernets) {
    const auto seed = r.at("seed").get<std::uint64_t>();
    if (r.at("kind") == "uniform") uniform[seed] = &r;
    if (r.at("kind") == "pcnas") pcnas[seed] = &r;
    if (r.at("kind") == "fading") fading[{seed, r.at("size").get<std::size_t>()}] = &r;
  }
  out("## Ranking quality under the MACs limit (shared-weight vs stand-alone accuracy)\n\n");
  out("Over the architectures within the limit (%.4f M MACs, a third of the space). *pool subspace*: the "
      "architectures PC-NAS's last interval trained (its pool before the last step × every last choice), "
      "ranked by each supernet.\n\n",
      macs_limit());
  out("| seed | uniform τ | uniform ρ | uniform top-10 | PC-NAS τ | PC-NAS ρ | PC-NAS top-10 | pool subspace | "
      "uniform τ there | PC-NAS τ there |\n|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<double> ut, ur, uk, pt, pr, pk, ust, pst;
  for (const auto& [seed, u] : uniform) {
    const auto us = shared_of(*u);
    const auto pu = pair_up(truth, us);
    if (pu.truth.size() < 10) continue;
    ut.push_back(tau(pu));
    ur.push_back(pcnas::eval::spearman_rho(pu.truth, pu.shared));
    uk.push_back(pcnas::eval::top_k_overlap(pu.truth, pu.shared, 10));
    out("| %llu | %.3f | %.3f | %.1f", static_cast<unsigned long long>(seed), ut.back(), ur.back(), uk.back());
    if (const auto it = pcnas.find(seed); it != pcnas.end()) {
      const auto ps = shared_of(*it->second);
      const auto pp = pair_up(truth, ps);
      const auto sub = it->second->at("last_interval_subspace").get<std::vector<std::size_t>>();
      pt.push_back(tau(pp));
      pr.push_back(pcnas::eval::spearman_rho(pp.truth, pp.shared));
      pk.push_back(pcnas::eval::top_k_overlap(pp.truth, pp.shared, 10));
      ust.push_back(tau(pair_up(truth, us, &sub)));
      pst.push_back(tau(pair_up(truth, ps, &sub)));
      out(" | %.3f | %.3f | %.1f | %zu | %.3f | %.3f |\n", pt.back(), pr.back(), pk.back(), sub.size(), ust.back(),
          pst.back());
    } else {
      out(" | | | | | | |\n");
    }
  }
  out("| **mean ± sd** | %s | %s | %s | %s | %s | %s | | %s | %s |\n\n", pm(summarize(ut)).c_str(),
      pm(summarize(ur)).c_str(), pm(summarize(uk), 1, 2).c_str(), pm(summarize(pt)).c_str(),
      pm(summarize(pr)).c_str(), pm(summarize(pk), 1, 2).c_str(), pm(summarize(ust)).c_str(),
      pm(summarize(pst)).c_str());

  // ---------------------------------------------------------------- the methods judged exactly
  out("## The methods, judged by the stand-alone rank of what they found\n\n");
  out("*better*: the share of the architectures within the limit that are better alone than the one found "
      "(0 %%: the best). Evolution and random search run on the uniform supernet of the same seed with as "
      "many evaluations as PC-NAS's nominal procedure.\n\n");
  std::vector<double> pb, eb, rb, pa, ea, ra;
  std::vector<std::size_t> feasible;
  for (std::size_t i = 0; i < num_archs; ++i)
    if (macs_constraint().is_feasible(arch_at(i))) feasible.push_back(i);
  const bool complete_truth = std::all_of(feasible.begin(), feasible.end(), [&](std::size_t i) { return truth.count(i); });
  if (complete_truth) {
    out("| seed | PC-NAS found | test acc. | better | evolution found | test acc. | better | random found | test "
        "acc. | better |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& [seed, u] : uniform) {
      const auto it = pcnas.find(seed);
      if (it == pcnas.end()) continue;
      const auto p = it->second->at("found").at("arch_index").get<std::size_t>();
      const auto e = u->at("evolution").at("arch_index").get<std::size_t>();
      const auto r = u->at("random").at("arch_index").get<std::size_t>();
      pb.push_back(share_better(truth, feasible, p));
      eb.push_back(share_better(truth, feasible, e));
      rb.push_back(share_better(truth, feasible, r));
      pa.push_back(truth.at(p));
      ea.push_back(truth.at(e));
      ra.push_back(truth.at(r));
      out("| %llu | `%s` | %.2f %% | %.1f %% | `%s` | %.2f %% | %.1f %% | `%s` | %.2f %% | %.1f %% |\n",
          static_cast<unsigned long long>(seed), arch_text(arch_at(p)).c_str(), 100 * pa.back(), pb.back(),
          arch_text(arch_at(e)).c_str(), 100 * ea.back(), eb.back(), arch_text(arch_at(r)).c_str(), 100 * ra.back(),
          rb.back());
    }
    out("| **mean ± sd** | | %s | %s | | %s | %s | | %s | %s |\n\n", pm(summarize(pa), 100, 2).c_str(),
        pm(summarize(pb), 1, 1).c_str(), pm(summarize(ea), 100, 2).c_str(), pm(summarize(eb), 1, 1).c_str(),
        pm(summarize(ra), 100, 2).c_str(), pm(summarize(rb), 1, 1).c_str());
    double best = 0.0;
    for (std::size_t i : feasible) best = std::max(best, truth.at(i));
    out("The best architecture within the limit reaches %.2f %% alone.", 100 * best);
    if (pb.size() >= 2) {
      const auto vs_e = pcnas::eval::wilcoxon_signed_rank(pb, eb);
      const auto vs_r = pcnas::eval::wilcoxon_signed_rank(pb, rb);
      out(" Paired over %zu seeds (Wilcoxon signed-rank, exact, two-sided, on *better*): PC-NAS − evolution "
          "%+.1f points on average, p = %.3f (%zu non-zero pairs); PC-NAS − random %+.1f, p = %.3f.",
          pb.size(), vs_e.mean_difference, vs_e.p_two_sided, vs_e.pairs, vs_r.mean_difference, vs_r.p_two_sided);
    }
    out("\n\n");
  } else {
    out("(waiting for the ground truth of every architecture within the limit)\n\n");
  }

  // ---------------------------------------------------------------- the fading
  out("## Posterior fading: supernets on nested subspaces\n\n");
  out("Uniform single-path supernets on subspaces of 1, 4, 16, 64 and 400 architectures around `k3e3 k3e3 "
      "k3e3 k3e3`, each trained for the same total number of steps. *gap*: stand-alone minus shared-weight "
      "accuracy on the same 5,000 held-out images, averaged over the subspace.\n\n");
  out("| architectures sharing | seeds | gap (points) | τ within the subspace |\n|---|---|---|---|\n");
  std::vector<double> fx, fgap, fgap_sd, ftau, ftau_sd;
  for (const std::size_t size : subspace_sizes) {
    std::vector<double> gaps, taus;
    for (const auto& [key, r] : fading) {
      if (key.second != size) continue;
      const auto s = shared_of(*r);
      const auto p = pair_up(truth_val, s);
      if (p.truth.size() != size) continue;  // the ground truth is not complete for it yet
      double g = 0.0;
      for (std::size_t k = 0; k < p.truth.size(); ++k) g += (p.truth[k] - p.shared[k]) / static_cast<double>(size);
      gaps.push_back(100 * g);
      if (size >= 4) taus.push_back(tau(pair_up(truth, s)));
    }
    if (gaps.empty()) continue;
    const auto g = summarize(gaps), t = summarize(taus);
    out("| %zu | %zu | %s | %s |\n", size, gaps.size(), pm(g, 1, 2).c_str(), size >= 4 ? pm(t).c_str() : "—");
    fx.push_back(static_cast<double>(size));
    fgap.push_back(g.mean);
    fgap_sd.push_back(g.sd);
    ftau.push_back(size >= 4 ? t.mean : NAN);
    ftau_sd.push_back(size >= 4 ? t.sd : 0.0);
  }
  out("\n");

  // ---------------------------------------------------------------- figures
  using namespace svg_plot;
  if (!uniform.empty() && !truth.empty()) {
    std::vector<panel> panels;
    // Both supernets of the first seed; PC-NAS's last-interval subspace marked in each.
    const auto seed = uniform.begin()->first;
    const auto pc = pcnas.find(seed);
    std::vector<std::size_t> sub;
    if (pc != pcnas.end()) sub = pc->second->at("last_interval_subspace").get<std::vector<std::size_t>>();
    const auto add = [&](const char* name, const nlohmann::json& r, const char* colour) {
      const auto p = pair_up(truth, shared_of(r));
      if (p.truth.empty()) return;
      panel pn{.title = std::string(name) + ", seed " + std::to_string(seed) + ": τ = " + num(tau(p), 3),
               .x = {}, .y = {}, .data = {}, .diagonal = false};
      series all{.name = "within the limit", .colour = colour};
      series marked{.name = "PC-NAS's last-interval subspace", .colour = "#000000", .radius = 3.5, .opacity = 0.9};
      for (std::size_t k = 0; k < p.truth.size(); ++k) {
        const bool in = std::find(sub.begin(), sub.end(), p.index[k]) != sub.end();
        (in ? marked : all).x.push_back(100 * p.truth[k]);
        (in ? marked : all).y.push_back(100 * p.shared[k]);
      }
      std::vector<double> xs = all.x, ys = all.y;
      xs.insert(xs.end(), marked.x.begin(), marked.x.end());
      ys.insert(ys.end(), marked.y.begin(), marked.y.end());
      const auto [xl, xh] = std::minmax_element(xs.begin(), xs.end());
      const auto [yl, yh] = std::minmax_element(ys.begin(), ys.end());
      pn.x = {.label = "stand-alone test accuracy (%)", .lo = *xl - 0.5, .hi = *xh + 0.5, .log2 = false,
              .ticks = nice_ticks(*xl - 0.5, *xh + 0.5), .decimals = 0};
      pn.y = {.label = "shared-weight held-out accuracy (%)", .lo = *yl - 0.5, .hi = *yh + 0.5, .log2 = false,
              .ticks = nice_ticks(*yl - 0.5, *yh + 0.5), .decimals = 0};
      pn.data.push_back(std::move(all));
      if (!marked.x.empty()) pn.data.push_back(std::move(marked));
      panels.push_back(std::move(pn));
    };
    add("uniform one-shot", *uniform.begin()->second, "#1f77b4");
    if (pc != pcnas.end()) add("PC-NAS", *pc->second, "#d62728");
    write((dir / "ranking_scatter.svg").string(),
          "Shared-weight vs stand-alone accuracy, architectures within the MACs limit", panels);
  }
  if (!fx.empty()) {
    panel gap{.title = "accuracy lost to sharing",
              .x = {.label = "architectures sharing the weights", .lo = 0.7, .hi = 570, .log2 = true,
                    .ticks = {1, 4, 16, 64, 400}, .decimals = 0},
              .y = {}, .data = {}, .diagonal = false};
    const auto [gl, gh] = std::minmax_element(fgap.begin(), fgap.end());
    const double pad = 1.0 + *std::max_element(fgap_sd.begin(), fgap_sd.end());
    gap.y = {.label = "stand-alone − shared (points)", .lo = std::min(0.0, *gl - pad), .hi = *gh + pad,
             .log2 = false, .ticks = nice_ticks(std::min(0.0, *gl - pad), *gh + pad), .decimals = 1};
    gap.data.push_back({.name = "mean ± sd over seeds", .colour = "#d62728", .x = fx, .y = fgap, .error = fgap_sd,
                        .line = true, .radius = 4, .opacity = 1.0});
    panel kt{.title = "ranking within the subspace", .x = gap.x,
             .y = {.label = "Kendall τ", .lo = -0.2, .hi = 1.0, .log2 = false,
                   .ticks = {-0.2, 0, 0.2, 0.4, 0.6, 0.8, 1.0}, .decimals = 1},
             .data = {}, .diagonal = false};
    series ts{.name = "mean ± sd over seeds", .colour = "#1f77b4", .line = true, .radius = 4, .opacity = 1.0};
    for (std::size_t k = 0; k < fx.size(); ++k)
      if (!std::isnan(ftau[k])) {
        ts.x.push_back(fx[k]);
        ts.y.push_back(ftau[k]);
        ts.error.push_back(ftau_sd[k]);
      }
    kt.data.push_back(std::move(ts));
    write((dir / "fading.svg").string(), "Posterior fading on fmnist_micro (equal total steps)", {gap, kt});
  }
  if (!pb.empty()) {
    panel m{.title = "",
            .x = {.label = "method (1 PC-NAS, 2 evolution, 3 random)", .lo = 0.5, .hi = 3.5, .log2 = false,
                  .ticks = {1, 2, 3}, .decimals = 0},
            .y = {}, .data = {}, .diagonal = false};
    const double top = std::max({*std::max_element(pb.begin(), pb.end()), *std::max_element(eb.begin(), eb.end()),
                                 *std::max_element(rb.begin(), rb.end()), 5.0});
    m.y = {.label = "feasible architectures better alone (%)", .lo = -1, .hi = top + 2, .log2 = false,
           .ticks = nice_ticks(0, top + 2), .decimals = 0};
    const char* colours[] = {"#d62728", "#1f77b4", "#7f7f7f"};
    const char* names[] = {"PC-NAS", "SPOS + evolution", "random search"};
    const std::vector<double>* values[] = {&pb, &eb, &rb};
    for (int k = 0; k < 3; ++k) {
      series s{.name = names[k], .colour = colours[k], .radius = 4, .opacity = 0.6};
      for (std::size_t i = 0; i < values[k]->size(); ++i) {
        s.x.push_back(1 + k + 0.25 * (static_cast<double>(i) / static_cast<double>(values[k]->size()) - 0.5));
        s.y.push_back((*values[k])[i]);
      }
      m.data.push_back(std::move(s));
      const auto st = summarize(*values[k]);
      m.data.push_back({.name = "", .colour = "#000000", .x = {1.0 + k}, .y = {st.mean}, .error = {st.sd},
                        .line = false, .radius = 5, .opacity = 1.0});
    }
    write((dir / "methods.svg").string(), "Found architectures judged alone (a dot per seed; black: mean ± sd)", {m},
          640, 360);
  }
  return 0;
}

}  // namespace micro_study
