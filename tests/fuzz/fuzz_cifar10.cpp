// CIFAR-10 binary batches, plain or gzip.
#include <pcnas/data/cifar10.hpp>

#include "fuzz_file.hpp"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path files[] = {pcnas_fuzz::write_scratch(data, size)};
  try {
    const auto ds = pcnas::data::read_cifar10(files);
    ds.check();
  } catch (const std::exception&) {
  }
  return 0;
}
