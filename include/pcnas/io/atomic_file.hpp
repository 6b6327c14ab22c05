// Replacing a file so that a crash at any moment leaves either the old or the new content,
// never a mix: write a temporary file beside it, flush it to disk, rename it over the target.
// Checkpoints, latency tables and results are written this way. No third-party dependency.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#define PCNAS_IO_POSIX 1
#else
#define PCNAS_IO_POSIX 0
#endif

namespace pcnas::io {

/// Every error about a file the library reads or writes: the message starts with the path, and
/// path() gives it alone. (io::format_error, for a file whose content is refused, is one.)
class file_error : public std::runtime_error {
 public:
  file_error(std::string path, const std::string& what)
      : std::runtime_error(path.empty() ? what : path + ": " + what), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

namespace detail {
inline file_error file_failure(const std::filesystem::path& path, const std::string& what) {
  return file_error(path.string(), what);
}
}  // namespace detail

// Throws io::file_error naming the path and the failing call; the target is untouched
// unless the rename succeeded. The temporary is removed on failure.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // The process id keeps two writers of the same file from sharing a temporary.
#if PCNAS_IO_POSIX
  const std::string suffix = ".tmp." + std::to_string(static_cast<long long>(::getpid()));
#else
  const std::string suffix = ".tmp";
#endif
  std::filesystem::path tmp = path;
  tmp += suffix;

#if PCNAS_IO_POSIX
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw detail::file_failure(tmp, std::string("cannot create: ") + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return detail::file_failure(tmp, std::string(what) + ": " + std::strerror(err));
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail("write failed");
    }
    done += static_cast<std::size_t>(n);
  }
  // Without the fsync the rename can reach the disk before the data, and a crash would leave
  // an empty file under the final name.
  if (::fsync(fd) != 0) throw fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw detail::file_failure(tmp, std::string("close failed: ") + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw detail::file_failure(path, std::string("rename failed: ") + std::strerror(err));
  }
  // Make the rename itself durable. A directory that cannot be opened (some file systems)
  // only loses that last guarantee, so it is not an error.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
#else
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw detail::file_failure(tmp, "cannot create");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp);
      throw detail::file_failure(tmp, "write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw detail::file_failure(path, "rename failed: " + ec.message());
  }
  (void)dir;
#endif
}

// The whole file as bytes; a missing, unreadable or non-regular file names the path. (A
// directory opens as an ifstream on Linux and then fails inside the stream buffer with
// "basic_filebuf::underflow", so it is refused before it is opened.)
inline std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) throw detail::file_failure(path, "is a directory, not a file");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw detail::file_failure(path, std::string("cannot open for reading") +
                                       (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }
  std::string bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure& e) {
    throw detail::file_failure(path, std::string("read failed: ") + e.what());
  }
  if (in.bad()) throw detail::file_failure(path, "read failed");
  return bytes;
}

// Removes the temporaries "NAME.tmp.PID" that write_file_atomically leaves in `dir` when its
// process is killed between creating and renaming one: those whose process no longer runs.
// Another live process's temporary is left alone. Returns the paths removed.
inline std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> removed;
#if PCNAS_IO_POSIX
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) removed.push_back(it->path());
  }
#else
  (void)dir;
#endif
  return removed;
}

}  // namespace pcnas::io
