// An output directory owned by one run at a time: created and checked writable at start-up
// (before any long work), locked with flock() so that a second run into it is refused with the
// first one's pid, and cleared of the temporaries a killed run left behind.
#pragma once

#include <pcnas/json/run_options.hpp>

#include <nlohmann/json.hpp>

#include <span>
#include <string_view>

#include "spaces.hpp"

#include <pcnas/io/atomic_file.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace pcnas_cli {

/// Another run holds the lock on the output directory: exit code 4.
class busy_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Creates `dir` if needed and proves that a file can be created in it; `option` names the
/// command-line option in messages.
inline void check_writable_dir(const std::filesystem::path& dir, const std::string& option) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw usage_error(option + " " + dir.string() + ": exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw usage_error(option + " " + dir.string() + ": cannot create the directory: " + ec.message());
  const fs::path probe = dir / (".pcnas-write-test." + std::to_string(static_cast<long long>(::getpid())));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw usage_error(option + " " + dir.string() + ": cannot write there: " + std::strerror(err));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

/// The directory that will receive an output file: the file's parent must be writable, and the
/// file itself must not be a directory.
inline void check_writable_file(const std::filesystem::path& file, const std::string& option) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw usage_error(option + " " + file.string() + ": is a directory; give a file name");
  const auto parent = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(parent, ec))
    throw usage_error(option + " " + file.string() + ": " +
                      (std::filesystem::exists(parent, ec) ? parent.string() + " is not a directory"
                                                           : "the directory " + parent.string() + " does not exist"));
  check_writable_dir(parent, option);
}

/// Holds an exclusive flock() on DIR/.pcnas.lock for the life of the run. The lock goes with
/// the process, so a killed run never leaves a stale lock; the pid written into the file only
/// names the holder in the refusal.
class output_lock {
 public:
  output_lock(const std::filesystem::path& dir, const std::string& option) : path_(dir / ".pcnas.lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      const int err = errno;
      throw usage_error(option + " " + dir.string() + ": cannot create the lock file " + path_.string() + ": " +
                        std::strerror(err));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char pid[32] = "";
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK)
        throw usage_error(option + " " + dir.string() + ": cannot lock " + path_.string() + ": " + std::strerror(err));
      std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string();
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      throw busy_error(option + " " + dir.string() + " is in use by another pcnas run" +
                       (holder.empty() ? std::string() : " (pid " + holder + ")") +
                       "; wait for it to finish, or choose another " + option);
    }
    const std::string pid = std::to_string(static_cast<long long>(::getpid())) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // Only the message of a later refusal would lack the pid; the lock itself holds.
    }
    // A run killed while it wrote a file atomically leaves NAME.tmp.PID behind; with the lock
    // held, no other run of ours writes here, so a dead writer's temporary is only debris.
    for (const auto& stale : pcnas::io::remove_stale_temporaries(dir))
      std::fprintf(stderr, "removed %s, left by an interrupted run\n", stale.string().c_str());
  }
  output_lock(const output_lock&) = delete;
  output_lock& operator=(const output_lock&) = delete;
  ~output_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays, empty of meaning
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

/// A run into a directory that holds an earlier one (any of `files`) needs --resume, and then the
/// same options as that one (DIR/options.json). Returns whether there is an earlier run.
inline bool check_earlier_run(const std::filesystem::path& dir, std::span<const std::string_view> files, bool resume,
                              const nlohmann::json& options_now, const char* what = "search") {
  bool earlier = false;
  for (const auto f : files) earlier = earlier || std::filesystem::exists(dir / f);
  if (!earlier) return false;
  if (!resume)
    throw usage_error(dir.string() + " holds an earlier " + what + ": pass --resume to continue it, or choose another --out");
  const auto options_file = dir / "options.json";
  if (!std::filesystem::exists(options_file))
    throw usage_error("--resume: " + dir.string() + " holds a " + what + " without options.json (written by an older "
                      "pcnas), so this command's options cannot be checked against it; start it afresh in another --out");
  try {
    pcnas::io::check_same_options(options_file, options_now);
  } catch (const pcnas::io::options_mismatch& e) {
    throw usage_error(std::string("--resume: ") + e.what());
  }
  return true;
}

}  // namespace pcnas_cli
