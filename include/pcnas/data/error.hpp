// The one exception type of pcnas::data: bad or missing input files, always named in the message.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace pcnas::data {

// Thrown for input that cannot be used (missing, truncated, malformed). Argument misuse by the
// caller (a batch size of 0, a split larger than the data) throws std::invalid_argument instead,
// so that a caller can tell "fix the files" from "fix the code".
class data_error : public std::runtime_error {
 public:
  data_error(const std::filesystem::path& file, const std::string& what)
      : std::runtime_error(file.string() + ": " + what), file_(file) {}

  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  std::filesystem::path file_;
};

}  // namespace pcnas::data
