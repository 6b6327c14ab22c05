// Readers of pcnas::data: the real Fashion-MNIST files, and every way an IDX or CIFAR-10 file
// can be wrong, each written as a plain and as a gzip file.
#include <pcnas/data/byte_reader.hpp>
#include <pcnas/data/cifar10.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/idx.hpp>

#include <doctest/doctest.h>

#include "data/fixtures.hpp"

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace data = pcnas::data;
using pcnas_test::idx_bytes;
using pcnas_test::temp_dir;

namespace {

template <class F>
std::string data_error_message(F&& f) {
  try {
    f();
  } catch (const data::data_error& e) {
    return e.what();
  }
  return "(no data_error was thrown)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Writes the bytes under `name` plainly or as gzip, and returns the path.
std::filesystem::path write(const temp_dir& dir, const std::string& name, const std::vector<std::uint8_t>& bytes,
                            bool gz) {
  const auto file = dir / (gz ? name + ".gz" : name);
  if (gz) pcnas_test::write_gz(file, bytes);
  else pcnas_test::write_plain(file, bytes);
  return file;
}

std::vector<std::uint8_t> iota_bytes(std::size_t n, int start = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((start + static_cast<int>(i)) % 256);
  return v;
}

// Restores an environment variable when the test ends, whatever it did to it.
class env_guard {
 public:
  explicit env_guard(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  ~env_guard() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("Fashion-MNIST loads with its published sizes and balanced classes") {
  const auto& train = pcnas_test::fmnist(data::split::train);
  const auto& test = pcnas_test::fmnist(data::split::test);
  CHECK(train.count == 60000);
  CHECK(test.count == 10000);
  for (const auto* ds : {&train, &test}) {
    CHECK(ds->height == 28);
    CHECK(ds->width == 28);
    CHECK(ds->channels == 1);
    CHECK(ds->num_classes == 10);
    CHECK(ds->images.size() == ds->count * 28 * 28);
    CHECK(ds->labels.size() == ds->count);
    CHECK(ds->norm == data::fashion_mnist_normalization());
    CHECK_NOTHROW(ds->check());
  }
  for (auto n : data::class_counts(train)) CHECK(n == 6000);
  for (auto n : data::class_counts(test)) CHECK(n == 1000);

  // Pixels are (byte/255 − mean)/std, so the extremes are those of bytes 0 and 255, and both occur.
  const auto [lo, hi] = std::minmax_element(train.images.begin(), train.images.end());
  CHECK(*lo == doctest::Approx((0.0 - 0.2860) / 0.3530).epsilon(1e-6));
  CHECK(*hi == doctest::Approx((1.0 - 0.2860) / 0.3530).epsilon(1e-6));
}

TEST_CASE("the Fashion-MNIST mean and std constants are those of the training pixels") {
  const auto raw = data::read_idx_images(data::find_data_file(data::default_data_dir(), "train-images-idx3-ubyte"));
  REQUIRE(raw.pixels.size() == 60000u * 28 * 28);
  std::uint64_t sum = 0, sum_sq = 0;  // exact integer moments of the bytes
  for (auto p : raw.pixels) {
    sum += p;
    sum_sq += std::uint64_t{p} * p;
  }
  const double n = static_cast<double>(raw.pixels.size());
  const double mean = static_cast<double>(sum) / n / 255.0;
  const double var = static_cast<double>(sum_sq) / n / (255.0 * 255.0) - mean * mean;
  const double std_dev = std::sqrt(var);
  MESSAGE("Fashion-MNIST train pixels: mean " << mean << ", std " << std_dev);
  CHECK(std::abs(mean - data::fashion_mnist_mean) < 5e-5);
  CHECK(std::abs(std_dev - data::fashion_mnist_std) < 5e-5);

  // And the normalised set has mean 0 and std 1 to the same precision.
  const auto& train = pcnas_test::fmnist(data::split::train);
  double s = 0, s2 = 0;
  for (float x : train.images) {
    s += x;
    s2 += double{x} * x;
  }
  const double m = s / static_cast<double>(train.images.size());
  CHECK(std::abs(m) < 2e-4);
  CHECK(std::abs(std::sqrt(s2 / static_cast<double>(train.images.size()) - m * m) - 1.0) < 2e-4);
}

TEST_CASE("default_data_dir honours PCNAS_DATA_DIR") {
  env_guard guard("PCNAS_DATA_DIR");
  ::setenv("PCNAS_DATA_DIR", "/some/where", 1);
  CHECK(data::default_data_dir() == "/some/where");
  ::setenv("PCNAS_DATA_DIR", "", 1);
  CHECK(data::default_data_dir() == "/usr/share/datasets/fashion-mnist");
  ::unsetenv("PCNAS_DATA_DIR");
  CHECK(data::default_data_dir() == "/usr/share/datasets/fashion-mnist");
}

TEST_CASE("a missing data directory names every path tried") {
  temp_dir dir;
  const auto message = data_error_message([&] { data::load_fashion_mnist(dir.path(), data::split::test); });
  CHECK_MESSAGE(contains(message, (dir / "t10k-images-idx3-ubyte").string() + " and "), message);
  CHECK_MESSAGE(contains(message, (dir / "t10k-images-idx3-ubyte.gz").string()), message);
  CHECK_MESSAGE(contains(message, "PCNAS_DATA_DIR"), message);
}

TEST_CASE("load_fashion_mnist reads plain and gz files and prefers the plain one") {
  temp_dir dir;
  const auto pixels = iota_bytes(2 * 28 * 28, 7);
  const std::vector<std::uint8_t> labels{3, 9};
  write(dir, "t10k-images-idx3-ubyte", idx_bytes(data::idx_images_magic, {2, 28, 28}, pixels), true);
  write(dir, "t10k-labels-idx1-ubyte", idx_bytes(data::idx_labels_magic, {2}, labels), false);

  const auto ds = data::load_fashion_mnist(dir.path(), data::split::test, data::identity_normalization(1));
  REQUIRE(ds.count == 2);
  CHECK(ds.labels == labels);
  for (std::size_t i = 0; i < pixels.size(); ++i)
    REQUIRE(ds.images[i] == doctest::Approx(pixels[i] / 255.0f));

  // With both present, the plain file is read: make it differ (labels 3 → 4) and check.
  write(dir, "t10k-labels-idx1-ubyte", idx_bytes(data::idx_labels_magic, {2}, std::vector<std::uint8_t>{4, 9}), true);
  CHECK(data::find_data_file(dir.path(), "t10k-labels-idx1-ubyte") == dir / "t10k-labels-idx1-ubyte");
  CHECK(data::load_fashion_mnist(dir.path(), data::split::test).labels[0] == 3);

  // Default normalisation: the stated constants.
  const auto normalised = data::load_fashion_mnist(dir.path(), data::split::test);
  CHECK(normalised.images[5] == doctest::Approx((pixels[5] / 255.0f - 0.2860f) / 0.3530f));

  // Images of another size are another data set.
  write(dir, "t10k-images-idx3-ubyte", idx_bytes(data::idx_images_magic, {2, 3, 4}, iota_bytes(24)), false);
  const auto message = data_error_message([&] { data::load_fashion_mnist(dir.path(), data::split::test); });
  CHECK_MESSAGE(contains(message, "expected 28×28 Fashion-MNIST images, found 3×4"), message);
}

TEST_CASE("IDX files are read exactly") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    temp_dir dir;
    const auto pixels = iota_bytes(3 * 2 * 4);
    const auto images = data::read_idx_images(
        write(dir, "images", idx_bytes(data::idx_images_magic, {3, 2, 4}, pixels), gz));
    CHECK(images.count == 3);
    CHECK(images.rows == 2);
    CHECK(images.cols == 4);
    CHECK(images.pixels == pixels);
    const std::vector<std::uint8_t> labels{0, 9, 5};
    CHECK(data::read_idx_labels(write(dir, "labels", idx_bytes(data::idx_labels_magic, {3}, labels), gz), 10) ==
          labels);
    data::byte_reader reader(dir / (gz ? "labels.gz" : "labels"));
    reader.read_rest();
    CHECK(reader.compressed() == gz);

    // A set of zero images is valid, if useless.
    CHECK(data::read_idx_images(write(dir, "none", idx_bytes(data::idx_images_magic, {0, 28, 28}, {}), gz)).count ==
          0);
  }
}

TEST_CASE("every malformed IDX file is reported with the file, what was expected and what was found") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    temp_dir dir;
    const auto twelve = iota_bytes(12);

    {
      INFO("missing file");
      const auto file = dir / "absent";
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, file.string() + ": no such file"), message);
    }
    {
      INFO("wrong magic: a labels file read as images");
      const auto file = write(dir, "x", idx_bytes(data::idx_labels_magic, {3}, iota_bytes(3)), gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, file.string()), message);
      CHECK_MESSAGE(contains(message, "expected 0x00000803 (IDX unsigned byte, 3 dimensions), found 0x00000801 "
                                      "(IDX unsigned byte, 1 dimension)"),
                    message);
    }
    {
      INFO("wrong magic: not an IDX file at all");
      const std::string text = "hello, world";
      const auto file = write(dir, "x", std::vector<std::uint8_t>(text.begin(), text.end()), gz);
      const auto message = data_error_message([&] { data::read_idx_labels(file, 10); });
      CHECK_MESSAGE(contains(message, "found 0x68656C6C (not an IDX header)"), message);
    }
    {
      INFO("file shorter than the magic number");
      const auto file = write(dir, "x", {0, 0}, gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, "truncated file: expected at least 16 bytes (the IDX header), got 2"), message);
    }
    {
      INFO("header cut inside the dimensions");
      auto bytes = idx_bytes(data::idx_images_magic, {3, 2, 2}, twelve);
      bytes.resize(10);
      const auto file = write(dir, "x", bytes, gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, "truncated file: expected at least 16 bytes (the IDX header), got"), message);
    }
    {
      INFO("data shorter than the dimensions say");
      const auto file = write(dir, "x", idx_bytes(data::idx_images_magic, {3, 2, 2}, iota_bytes(5)), gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, file.string() + ": truncated file: expected 28 bytes (16-byte header + 12 "
                                                      "data bytes), got 21"),
                    message);
    }
    {
      INFO("data longer than the dimensions say");
      const auto file = write(dir, "x", idx_bytes(data::idx_images_magic, {2, 2, 2}, twelve), gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, "longer than its header says: expected 24 bytes"), message);
    }
    {
      INFO("an image dimension of zero");
      const auto file = write(dir, "x", idx_bytes(data::idx_images_magic, {3, 0, 2}, {}), gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE(contains(message, "dimension 1 of IDX images is 0"), message);
    }
    {
      INFO("a header that promises gigabytes fails on the data, not on the allocation");
      const auto file =
          write(dir, "x", idx_bytes(data::idx_images_magic, {0xffffffffu, 0xffffffffu, 0xffffffffu}, twelve), gz);
      const auto message = data_error_message([&] { data::read_idx_images(file); });
      CHECK_MESSAGE((contains(message, "overflow") || contains(message, "too large")), message);
      const auto file2 = write(dir, "y", idx_bytes(data::idx_images_magic, {100000, 1000, 1000}, twelve), gz);
      const auto message2 = data_error_message([&] { data::read_idx_images(file2); });
      CHECK_MESSAGE(contains(message2, "expected 100000000016 bytes"), message2);
    }
    {
      INFO("label out of range");
      auto labels = iota_bytes(8);
      labels[5] = 12;
      const auto file = write(dir, "x", idx_bytes(data::idx_labels_magic, {8}, labels), gz);
      const auto message = data_error_message([&] { data::read_idx_labels(file, 10); });
      CHECK_MESSAGE(contains(message, file.string() + ": label 12 at index 5 is out of range: expected 0..9 for 10 "
                                                      "classes"),
                    message);
    }
    {
      INFO("images and labels disagree in number");
      const auto images = write(dir, "images", idx_bytes(data::idx_images_magic, {3, 2, 2}, twelve), gz);
      const auto labels = write(dir, "labels", idx_bytes(data::idx_labels_magic, {4}, iota_bytes(4)), gz);
      const auto message = data_error_message([&] { data::read_idx_labeled(images, labels, 10); });
      CHECK_MESSAGE(contains(message, labels.string() + ": holds 4 labels but " + images.string() + " holds 3 images"),
                    message);
    }
  }
}

TEST_CASE("a damaged gzip stream is reported, not read as data") {
  temp_dir dir;
  // Incompressible-ish data so that the compressed stream is long enough to damage.
  std::vector<std::uint8_t> pixels(4 * 28 * 28);
  std::uint32_t x = 12345;
  for (auto& p : pixels) p = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  const auto file = write(dir, "images", idx_bytes(data::idx_images_magic, {4, 28, 28}, pixels), true);
  auto compressed = pcnas_test::read_raw(file);
  REQUIRE(compressed.size() > 1000);

  SUBCASE("cut in the middle") {
    compressed.resize(compressed.size() / 2);
    pcnas_test::write_plain(file, compressed);
    const auto message = data_error_message([&] { data::read_idx_images(file); });
    CHECK_MESSAGE(contains(message, "truncated file: expected 3152 bytes (16-byte header + 3136 data bytes), got"),
                  message);
    CHECK_MESSAGE(contains(message, "(the gzip stream ends early)"), message);
  }
  SUBCASE("cut just before the checksum") {
    compressed.resize(compressed.size() - 8);
    pcnas_test::write_plain(file, compressed);
    const auto message = data_error_message([&] { data::read_idx_images(file); });
    CHECK_MESSAGE(contains(message, file.string() + ": truncated file: the data are complete but the gzip stream "
                                                    "ends before its checksum"),
                  message);
  }
  SUBCASE("corrupt bytes inside") {
    for (std::size_t i = compressed.size() / 2; i < compressed.size() / 2 + 16; ++i) compressed[i] ^= 0x5a;
    pcnas_test::write_plain(file, compressed);
    const auto message = data_error_message([&] { data::read_idx_images(file); });
    CHECK_MESSAGE(contains(message, file.string()), message);
  }
  SUBCASE("checksum wrong") {
    compressed[compressed.size() - 6] ^= 0xff;  // inside the CRC-32 trailer
    pcnas_test::write_plain(file, compressed);
    const auto message = data_error_message([&] { data::read_idx_images(file); });
    CHECK_MESSAGE(contains(message, "cannot decompress"), message);
  }
}

namespace {

// A CIFAR-10 record: label, then the R, G and B planes.
std::vector<std::uint8_t> cifar_record(std::uint8_t label, int seed) {
  std::vector<std::uint8_t> r(data::cifar10_record_bytes);
  r[0] = label;
  for (std::size_t i = 1; i < r.size(); ++i) r[i] = static_cast<std::uint8_t>((i * 7 + static_cast<std::size_t>(seed) * 31) % 251);
  return r;
}

}  // namespace

TEST_CASE("CIFAR-10 records become NHWC images") {
  temp_dir dir;
  std::vector<std::uint8_t> batch;
  const std::vector<std::uint8_t> labels{6, 9, 0};
  for (std::size_t k = 0; k < labels.size(); ++k) {
    const auto r = cifar_record(labels[k], static_cast<int>(k));
    batch.insert(batch.end(), r.begin(), r.end());
  }
  const auto plain = write(dir, "data_batch_1.bin", batch, false);
  const auto gz = write(dir, "data_batch_2.bin", batch, true);
  const std::vector<std::filesystem::path> files{plain, gz};
  const auto ds = data::read_cifar10(files, data::identity_normalization(3));
  REQUIRE(ds.count == 6);
  CHECK(ds.height == 32);
  CHECK(ds.width == 32);
  CHECK(ds.channels == 3);
  CHECK(ds.num_classes == 10);
  CHECK_NOTHROW(ds.check());
  CHECK(ds.labels == std::vector<std::uint8_t>{6, 9, 0, 6, 9, 0});
  for (std::size_t n = 0; n < ds.count; ++n) {
    const auto record = cifar_record(labels[n % 3], static_cast<int>(n % 3));
    const auto image = ds.image(n);
    for (std::size_t y = 0; y < 32; ++y)
      for (std::size_t x = 0; x < 32; ++x)
        for (std::size_t c = 0; c < 3; ++c)
          REQUIRE(image[(y * 32 + x) * 3 + c] == doctest::Approx(record[1 + c * 1024 + y * 32 + x] / 255.0f));
  }

  // The default normalisation is per channel.
  const auto normalised = data::read_cifar10(files);
  const auto norm = data::cifar10_normalization();
  for (std::size_t c = 0; c < 3; ++c)
    CHECK(normalised.images[c] == doctest::Approx((batch[1 + c * 1024] / 255.0f - norm.mean[c]) / norm.stddev[c]));

  // load_cifar10 finds the test batch in a directory, plain or gz.
  write(dir, "test_batch.bin", batch, true);
  CHECK(data::load_cifar10(dir.path(), data::split::test).count == 3);
  const auto message = data_error_message([&] { data::load_cifar10(dir.path(), data::split::train); });
  CHECK_MESSAGE(contains(message, "cannot find data_batch_3.bin"), message);
}

TEST_CASE("malformed CIFAR-10 batches are reported") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    temp_dir dir;
    auto batch = cifar_record(1, 0);
    const auto second = cifar_record(12, 1);
    batch.insert(batch.end(), second.begin(), second.end());

    const auto bad_label = write(dir, "labels.bin", batch, gz);
    auto message = data_error_message([&] { data::read_cifar10(std::vector{bad_label}); });
    CHECK_MESSAGE(contains(message, bad_label.string() + ": label 12 at record 1 is out of range: expected 0..9"),
                  message);

    batch.resize(data::cifar10_record_bytes + 100);
    const auto cut = write(dir, "cut.bin", batch, gz);
    message = data_error_message([&] { data::read_cifar10(std::vector{cut}); });
    CHECK_MESSAGE(contains(message, cut.string() + ": 3173 bytes is not a whole number of 3073-byte records"),
                  message);
    CHECK_MESSAGE(contains(message, "1 records and 100 bytes left over"), message);

    const auto empty = write(dir, "empty.bin", {}, gz);
    message = data_error_message([&] { data::read_cifar10(std::vector{empty}); });
    CHECK_MESSAGE(contains(message, "file is empty"), message);
  }
}

TEST_CASE("normalisations that cannot apply are refused") {
  temp_dir dir;
  const auto file = write(dir, "b.bin", cifar_record(1, 0), false);
  CHECK_THROWS_AS(data::read_cifar10(std::vector{file}, data::identity_normalization(1)), std::invalid_argument);
  CHECK_THROWS_AS(data::read_cifar10(std::vector{file}, data::normalization{{0, 0, 0}, {1, 0, 1}}),
                  std::invalid_argument);
}
