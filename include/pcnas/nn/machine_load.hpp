// How much of the machine other processes used while something was measured: the CPU time of
// the whole machine (/proc/stat) less this process's own (getrusage), over the wall time of all
// CPUs. Timings taken while others use a noticeable share include waiting for a CPU, above all
// with several threads whose barriers wait for the slowest. Linux only; elsewhere "unknown".
#pragma once

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#if defined(__linux__)
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace pcnas::nn {

struct cpu_snapshot {
  double machine_busy_s = 0.0, machine_total_s = 0.0, self_s = 0.0;
  bool ok = false;
};

inline cpu_snapshot cpu_now() {
  cpu_snapshot s;
#if defined(__linux__)
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu") return s;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.machine_total_s = (user + nice + system + idle + iowait + irq + softirq + steal) / tick;
  s.machine_busy_s = (user + nice + system + irq + softirq + steal) / tick;
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  s.self_s = static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
             1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  s.ok = true;
#endif
  return s;
}

/// The share of all CPUs' time that other processes used between two snapshots; -1 if unknown.
inline double others_share(const cpu_snapshot& a, const cpu_snapshot& b) {
  const double total = b.machine_total_s - a.machine_total_s;
  if (!a.ok || !b.ok || !(total > 0.0)) return -1.0;
  const double others = (b.machine_busy_s - a.machine_busy_s) - (b.self_s - a.self_s);
  return std::clamp(others / total, 0.0, 1.0);
}

/// A piece of work timed on the wall clock, with the share of the CPUs others used meanwhile.
struct watched_run {
  double seconds = 0.0;
  double others_share = -1.0;  // -1: unknown
};

template <class F>
watched_run run_watching_load(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto cpu0 = cpu_now();
  f();
  watched_run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.others_share = others_share(cpu0, cpu_now());
  return r;
}

}  // namespace pcnas::nn
