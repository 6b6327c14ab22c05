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

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define PCNAS_IO_POSIX 1
#else
#define PCNAS_IO_POSIX 0
#endif

namespace pcnas::io {

namespace detail {
inline std::runtime_error file_error(const std::filesystem::path& path, const std::string& what) {
  return std::runtime_error(path.string() + ": " + what);
}
}  // namespace detail

// Throws std::runtime_error naming the path and the failing call; the target is untouched
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
  if (fd < 0) throw detail::file_error(tmp, std::string("cannot create: ") + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return detail::file_error(tmp, std::string(what) + ": " + std::strerror(err));
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
    throw detail::file_error(tmp, std::string("close failed: ") + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw detail::file_error(path, std::string("rename failed: ") + std::strerror(err));
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
    if (!out) throw detail::file_error(tmp, "cannot create");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp);
      throw detail::file_error(tmp, "write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw detail::file_error(path, "rename failed: " + ec.message());
  }
  (void)dir;
#endif
}

// The whole file as bytes; a missing or unreadable file names the path.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw detail::file_error(path, "cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw detail::file_error(path, "read failed");
  return bytes;
}

}  // namespace pcnas::io
