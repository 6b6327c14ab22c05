// The random side of pcnas::data: pcnas::rng and shuffle, the held-out split, augmentation and
// the batch stream, checked for determinism, resumability and the properties they promise.
#include <pcnas/data/augment.hpp>
#include <pcnas/data/batcher.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/rng.hpp>

#include <doctest/doctest.h>

#include "data/fixtures.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <set>
#include <vector>

namespace data = pcnas::data;

namespace {

// Chi-square statistic of observed counts against equal expected counts.
double chi_square(const std::vector<std::uint64_t>& counts) {
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}));
  const double expected = total / static_cast<double>(counts.size());
  double chi2 = 0;
  for (auto c : counts) chi2 += (static_cast<double>(c) - expected) * (static_cast<double>(c) - expected) / expected;
  return chi2;
}

// A small labelled set whose pixel values identify image and position: image i, pixel p holds
// i + p / 1000, so any mix-up shows.
data::dataset synthetic(std::size_t count, std::size_t num_classes, std::size_t side = 4, std::size_t channels = 1) {
  data::dataset ds;
  ds.count = count;
  ds.height = side;
  ds.width = side;
  ds.channels = channels;
  ds.num_classes = num_classes;
  ds.norm = data::identity_normalization(channels);
  ds.images.resize(count * ds.image_size());
  ds.labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Unbalanced on purpose: class c has weight c + 1.
    std::size_t r = (i * 7919 + 13) % (num_classes * (num_classes + 1) / 2), c = 0;
    while (r >= c + 1) r -= ++c;
    ds.labels[i] = static_cast<std::uint8_t>(c);
    for (std::size_t p = 0; p < ds.image_size(); ++p)
      ds.images[i * ds.image_size() + p] = static_cast<float>(i) + static_cast<float>(p) / 1000.0f;
  }
  return ds;
}

bool same_image(std::span<const float> a, std::span<const float> b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

}  // namespace

TEST_CASE("rng: known answers pin the generator and the seeding") {
  // splitmix64 from 0 gives these four words (the published first outputs of splitmix64).
  CHECK(pcnas::rng(0).state() == std::array<std::uint64_t, 4>{0xe220a8397b1dcdafULL, 0x6e789e6aa1b965f4ULL,
                                                              0x06c45d188009454fULL, 0xf88bb8a8724c81ecULL});
  // xoshiro256** from the state {1, 2, 3, 4}.
  pcnas::rng r(0);
  r.set_state({1, 2, 3, 4});
  const std::array<std::uint64_t, 6> expected{11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL,
                                              1216172134540287360ULL, 607988272756665600ULL};
  for (auto e : expected) CHECK(r.next_u64() == e);

  // The portable 64×64 → 128 product.
  auto p = pcnas::detail::mul_64x64(0xfedcba9876543210ULL, 0x0123456789abcdefULL);
  CHECK(p.high == 0x0121fa00ad77d742ULL);
  CHECK(p.low == 0x2236d88fe5618cf0ULL);
  p = pcnas::detail::mul_64x64(~0ULL, ~0ULL);
  CHECK(p.high == 0xfffffffffffffffeULL);
  CHECK(p.low == 1);
}

TEST_CASE("rng: seeds, state round trip, argument checks") {
  pcnas::rng a(42), b(42), c(43);
  std::vector<std::uint64_t> xa, xb, xc;
  for (int i = 0; i < 16; ++i) {
    xa.push_back(a.next_u64());
    xb.push_back(b.next_u64());
    xc.push_back(c.next_u64());
  }
  CHECK(xa == xb);
  CHECK(xa != xc);

  const auto saved = a.state();
  std::vector<std::uint64_t> after;
  for (int i = 0; i < 8; ++i) after.push_back(a.next_u64());
  pcnas::rng resumed(7);
  resumed.set_state(saved);
  for (int i = 0; i < 8; ++i) CHECK(resumed.next_u64() == after[static_cast<std::size_t>(i)]);

  CHECK_THROWS_AS(resumed.set_state({0, 0, 0, 0}), std::invalid_argument);
  CHECK_THROWS_AS(resumed.uniform_index(0), std::invalid_argument);
  for (int i = 0; i < 100; ++i) CHECK(resumed.uniform_index(1) == 0);
}

TEST_CASE("rng: uniform_index and uniform01 are uniform") {
  pcnas::rng r(2024);
  // n = 10: 200,000 draws; chi-square with 9 degrees of freedom has its 99.99 % point near 33.7.
  std::vector<std::uint64_t> counts(10, 0);
  for (int i = 0; i < 200000; ++i) {
    const auto k = r.uniform_index(10);
    REQUIRE(k < 10);
    ++counts[k];
  }
  const double chi2_10 = chi_square(counts);
  MESSAGE("chi-square, uniform_index(10): " << chi2_10 << " (9 dof)");
  CHECK(chi2_10 < 40.0);

  // n just above 2^63 rejects about half the raw draws: the accepted ones must still be
  // uniform, seen here through which eighth of [0, n) they fall in.
  const std::uint64_t big = (1ULL << 63) + 12345;
  std::vector<std::uint64_t> eighths(8, 0);
  for (int i = 0; i < 80000; ++i) {
    const auto k = r.uniform_index(big);
    REQUIRE(k < big);
    ++eighths[static_cast<std::size_t>(k / (big / 8 + 1))];
  }
  const double chi2_big = chi_square(eighths);
  MESSAGE("chi-square, uniform_index(2^63 + 12345) by eighths: " << chi2_big << " (7 dof)");
  CHECK(chi2_big < 35.0);

  std::vector<std::uint64_t> tenths(10, 0);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform01();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
    ++tenths[static_cast<std::size_t>(u * 10)];
  }
  CHECK(sum / 100000 == doctest::Approx(0.5).epsilon(0.01));
  CHECK(chi_square(tenths) < 40.0);
}

TEST_CASE("shuffle is a uniform permutation") {
  pcnas::rng r(5);
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  auto shuffled = v;
  pcnas::shuffle(shuffled.begin(), shuffled.end(), r);
  CHECK(shuffled != v);
  auto sorted = shuffled;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == v);

  // Same seed, same permutation.
  pcnas::rng r1(99), r2(99);
  auto s1 = v, s2 = v;
  pcnas::shuffle(s1.begin(), s1.end(), r1);
  pcnas::shuffle(s2.begin(), s2.end(), r2);
  CHECK(s1 == s2);

  // Empty and one-element ranges are fine.
  std::vector<int> empty, one{1};
  pcnas::shuffle(empty.begin(), empty.end(), r);
  pcnas::shuffle(one.begin(), one.end(), r);
  CHECK(one == std::vector<int>{1});

  // All 24 orders of 4 elements come up equally often (23 dof; 99.99 % point near 54).
  std::map<std::array<int, 4>, std::uint64_t> seen;
  for (int i = 0; i < 48000; ++i) {
    std::array<int, 4> a{0, 1, 2, 3};
    pcnas::shuffle(a.begin(), a.end(), r);
    ++seen[a];
  }
  REQUIRE(seen.size() == 24);
  std::vector<std::uint64_t> counts;
  for (const auto& [perm, n] : seen) counts.push_back(n);
  CHECK(chi_square(counts) < 60.0);
}

TEST_CASE("split_train_val: deterministic, disjoint, complete, stratified") {
  const auto ds = synthetic(1000, 5);
  const auto counts = data::class_counts(ds);
  REQUIRE(std::all_of(counts.begin(), counts.end(), [](auto n) { return n > 0; }));

  for (auto mode : {data::split_mode::stratified, data::split_mode::simple}) {
    CAPTURE(static_cast<int>(mode));
    const auto a = data::split_train_val(ds, 137, 11, mode);
    const auto b = data::split_train_val(ds, 137, 11, mode);
    const auto c = data::split_train_val(ds, 137, 12, mode);
    CHECK(a.val_indices == b.val_indices);
    CHECK(a.train.images == b.train.images);
    CHECK(a.val_indices != c.val_indices);

    CHECK(a.val.count == 137);
    CHECK(a.train.count == 863);
    CHECK(std::is_sorted(a.val_indices.begin(), a.val_indices.end()));
    CHECK(std::is_sorted(a.train_indices.begin(), a.train_indices.end()));
    std::vector<std::size_t> all;
    std::merge(a.val_indices.begin(), a.val_indices.end(), a.train_indices.begin(), a.train_indices.end(),
               std::back_inserter(all));
    std::vector<std::size_t> expected(1000);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    CHECK(all == expected);  // disjoint and together everything

    for (std::size_t k = 0; k < a.val.count; ++k) {
      REQUIRE(same_image(a.val.image(k), ds.image(a.val_indices[k])));
      REQUIRE(a.val.labels[k] == ds.labels[a.val_indices[k]]);
    }
    for (std::size_t k = 0; k < a.train.count; k += 37) REQUIRE(same_image(a.train.image(k), ds.image(a.train_indices[k])));
    CHECK(a.val.norm == ds.norm);
    CHECK_NOTHROW(a.train.check());
    CHECK_NOTHROW(a.val.check());
  }

  // Stratified: each class gives its proportional share, rounded by at most one.
  const auto s = data::split_train_val(ds, 137, 11);
  const auto val_counts = data::class_counts(s.val);
  for (std::size_t c = 0; c < counts.size(); ++c) {
    const double share = 137.0 * static_cast<double>(counts[c]) / 1000.0;
    CHECK(static_cast<double>(val_counts[c]) >= std::floor(share));
    CHECK(static_cast<double>(val_counts[c]) <= std::ceil(share));
  }

  CHECK(data::split_train_val(ds, 0, 1).train.count == 1000);
  CHECK_THROWS_AS(data::split_train_val(ds, 1000, 1), std::invalid_argument);
}

TEST_CASE("split_train_val on Fashion-MNIST: 200 validation images per class") {
  const auto& train = pcnas_test::fmnist(data::split::train);
  const auto s = data::split_train_val(train, 2000, 1);
  CHECK(s.train.count == 58000);
  for (auto n : data::class_counts(s.val)) CHECK(n == 200);
  for (auto n : data::class_counts(s.train)) CHECK(n == 5800);
}

TEST_CASE("augmentation: flip twice and crop by nothing are the identity") {
  const data::image_shape shape{5, 7, 3};
  std::vector<float> src(shape.size());
  std::iota(src.begin(), src.end(), 1.0f);
  const std::vector<float> fill{-1.0f, -2.0f, -3.0f};
  std::vector<float> once(shape.size()), twice(shape.size());

  data::flip_horizontal(src, once, shape);
  CHECK(once != src);
  // Pixel (y, x) of the mirror is pixel (y, W−1−x) of the source, channels kept together.
  for (std::size_t y = 0; y < 5; ++y)
    for (std::size_t x = 0; x < 7; ++x)
      for (std::size_t c = 0; c < 3; ++c) REQUIRE(once[(y * 7 + x) * 3 + c] == src[(y * 7 + (6 - x)) * 3 + c]);
  data::flip_horizontal(once, twice, shape);
  CHECK(twice == src);

  // A padding of 0 draws no shift, and no shift copies the image.
  pcnas::rng r(3);
  for (int i = 0; i < 20; ++i) {
    const auto d = data::draw_augmentation(data::augmentation{0, false}, r);
    CHECK(d.dy == 0);
    CHECK(d.dx == 0);
    CHECK_FALSE(d.flip);
  }
  data::apply_augmentation(src, once, shape, data::augment_draw{0, 0, false}, fill);
  CHECK(once == src);

  // A shift moves the pixels and pads with the fill of each channel.
  data::apply_augmentation(src, once, shape, data::augment_draw{1, -2, false}, fill);
  for (std::size_t y = 0; y < 5; ++y)
    for (std::size_t x = 0; x < 7; ++x)
      for (std::size_t c = 0; c < 3; ++c) {
        const bool inside = y + 1 < 5 && x >= 2;
        REQUIRE(once[(y * 7 + x) * 3 + c] == (inside ? src[((y + 1) * 7 + (x - 2)) * 3 + c] : fill[c]));
      }

  CHECK_THROWS_AS(data::apply_augmentation(src, std::span<float>(once).first(4), shape, {}, fill),
                  std::invalid_argument);
}

TEST_CASE("augmentation draws cover the padding range and flip half the time") {
  pcnas::rng r(17);
  const data::augmentation aug{4, true};
  std::set<std::ptrdiff_t> dys, dxs;
  int flips = 0;
  for (int i = 0; i < 4000; ++i) {
    const auto d = data::draw_augmentation(aug, r);
    dys.insert(d.dy);
    dxs.insert(d.dx);
    flips += d.flip;
  }
  CHECK(dys == std::set<std::ptrdiff_t>{-4, -3, -2, -1, 0, 1, 2, 3, 4});
  CHECK(dxs == dys);
  CHECK(flips > 1800);
  CHECK(flips < 2200);
}

TEST_CASE("batcher: training epochs are seeded permutations with the last partial batch dropped") {
  const auto ds = synthetic(103, 3);
  data::batcher a(ds, {.batch_size = 10, .seed = 8});
  data::batcher b(ds, {.batch_size = 10, .seed = 8});
  data::batcher other_seed(ds, {.batch_size = 10, .seed = 9});
  CHECK(a.batches_per_epoch() == 10);

  std::vector<std::vector<std::size_t>> epochs(3);
  bool differs_from_other_seed = false;
  for (std::size_t e = 0; e < 3; ++e) {
    for (std::size_t k = 0; k < 10; ++k) {
      CHECK(a.position() == data::batch_position{e, k});
      const auto x = a.next();
      const auto y = b.next();
      const auto z = other_seed.next();
      REQUIRE(x.size == 10);
      CHECK(x.position == data::batch_position{e, k});
      CHECK(std::equal(x.indices.begin(), x.indices.end(), y.indices.begin(), y.indices.end()));
      differs_from_other_seed |= !std::equal(x.indices.begin(), x.indices.end(), z.indices.begin(), z.indices.end());
      for (std::size_t j = 0; j < x.size; ++j) {
        REQUIRE(x.labels[j] == ds.labels[x.indices[j]]);
        REQUIRE(same_image(x.images.subspan(j * ds.image_size(), ds.image_size()), ds.image(x.indices[j])));
      }
      epochs[e].insert(epochs[e].end(), x.indices.begin(), x.indices.end());
    }
  }
  CHECK(a.position() == data::batch_position{3, 0});
  CHECK(differs_from_other_seed);
  for (const auto& epoch : epochs) {
    CHECK(std::set<std::size_t>(epoch.begin(), epoch.end()).size() == 100);  // no image twice in an epoch
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);
}

TEST_CASE("batcher: evaluation covers every image once, in order") {
  const auto ds = synthetic(103, 3);
  data::batcher eval(ds, {.batch_size = 10, .mode = data::batch_mode::eval});
  CHECK(eval.batches_per_epoch() == 11);
  std::vector<std::size_t> seen;
  for (std::size_t k = 0; k < eval.batches_per_epoch(); ++k) {
    const auto x = eval.next();
    CHECK(x.size == (k < 10 ? 10u : 3u));
    CHECK(x.images.size() == x.size * ds.image_size());
    CHECK(x.labels.size() == x.size);
    seen.insert(seen.end(), x.indices.begin(), x.indices.end());
  }
  std::vector<std::size_t> expected(103);
  std::iota(expected.begin(), expected.end(), std::size_t{0});
  CHECK(seen == expected);
  CHECK(eval.position() == data::batch_position{1, 0});
  CHECK(eval.next().indices[0] == 0);  // the next pass starts again
}

TEST_CASE("batcher: a saved position replays exactly the same batches, augmentation included") {
  const auto ds = synthetic(50, 4, 6, 2);
  const data::batcher_options options{.batch_size = 8, .seed = 1234, .augment = {.crop_padding = 2, .horizontal_flip = true}};
  data::batcher original(ds, options);
  for (int i = 0; i < 9; ++i) original.next();  // into the second epoch (6 batches per epoch)
  const auto saved = original.position();
  CHECK(saved == data::batch_position{1, 3});

  std::vector<std::vector<float>> images;
  std::vector<std::vector<std::uint8_t>> labels;
  for (int i = 0; i < 10; ++i) {  // crosses into epoch 3
    const auto x = original.next();
    images.emplace_back(x.images.begin(), x.images.end());
    labels.emplace_back(x.labels.begin(), x.labels.end());
  }

  data::batcher resumed(ds, options);
  resumed.seek(saved);
  for (int i = 0; i < 10; ++i) {
    const auto x = resumed.next();
    CHECK(std::vector<float>(x.images.begin(), x.images.end()) == images[static_cast<std::size_t>(i)]);
    CHECK(std::vector<std::uint8_t>(x.labels.begin(), x.labels.end()) == labels[static_cast<std::size_t>(i)]);
  }
  CHECK(resumed.position() == original.position());

  // Seeking back replays too, and positions past an epoch are refused.
  original.seek(saved);
  const auto replay = original.next();
  CHECK(std::vector<float>(replay.images.begin(), replay.images.end()) == images.front());
  CHECK_THROWS_AS(original.seek({0, 6}), std::out_of_range);
}

TEST_CASE("batcher: augmented images are flips and shifts of their source") {
  const auto ds = synthetic(40, 2, 6, 2);
  const data::image_shape shape{6, 6, 2};
  const auto fill = ds.black_pixel();

  // Flip only: every image is its source or the mirror of it, and both occur.
  data::batcher flips(ds, {.batch_size = 8, .seed = 3, .augment = {.horizontal_flip = true}});
  int mirrored = 0, kept = 0;
  std::vector<float> mirror(shape.size());
  for (int i = 0; i < 20; ++i) {
    const auto x = flips.next();
    for (std::size_t j = 0; j < x.size; ++j) {
      const auto got = x.images.subspan(j * shape.size(), shape.size());
      const auto src = ds.image(x.indices[j]);
      data::flip_horizontal(src, mirror, shape);
      if (same_image(got, src)) ++kept;
      else if (same_image(got, mirror)) ++mirrored;
      else FAIL("an image is neither its source nor the mirror of it");
    }
  }
  CHECK(kept > 20);
  CHECK(mirrored > 20);

  // Crop with padding 0 (augmentation off) gives the images untouched.
  data::batcher plain(ds, {.batch_size = 8, .seed = 3, .augment = {.crop_padding = 0}});
  for (int i = 0; i < 5; ++i) {
    const auto x = plain.next();
    for (std::size_t j = 0; j < x.size; ++j)
      REQUIRE(same_image(x.images.subspan(j * shape.size(), shape.size()), ds.image(x.indices[j])));
  }

  // Crop with padding 1: every image is one of the nine shifts of its source.
  data::batcher crops(ds, {.batch_size = 8, .seed = 3, .augment = {.crop_padding = 1}});
  std::set<std::pair<std::ptrdiff_t, std::ptrdiff_t>> shifts_seen;
  std::vector<float> shifted(shape.size());
  for (int i = 0; i < 20; ++i) {
    const auto x = crops.next();
    for (std::size_t j = 0; j < x.size; ++j) {
      const auto got = x.images.subspan(j * shape.size(), shape.size());
      bool found = false;
      for (std::ptrdiff_t dy = -1; dy <= 1 && !found; ++dy)
        for (std::ptrdiff_t dx = -1; dx <= 1 && !found; ++dx) {
          data::apply_augmentation(ds.image(x.indices[j]), shifted, shape, {dy, dx, false}, fill);
          if (same_image(got, shifted)) {
            found = true;
            shifts_seen.insert({dy, dx});
          }
        }
      REQUIRE(found);
    }
  }
  CHECK(shifts_seen.size() == 9);
}

TEST_CASE("batcher: padding is black in pixel space") {
  // With the Fashion-MNIST normalisation a padded pixel reads as raw 0, as torchvision pads.
  const auto& test = pcnas_test::fmnist(data::split::test);
  const auto black = test.black_pixel();
  REQUIRE(black.size() == 1);
  CHECK(black[0] == doctest::Approx(-0.2860 / 0.3530));
  data::batcher crops(test, {.batch_size = 4, .seed = 1, .augment = {.crop_padding = 28}});
  // A padding as large as the image sometimes moves it out entirely.
  bool all_black = false;
  for (int i = 0; i < 50 && !all_black; ++i) {
    const auto x = crops.next();
    for (std::size_t j = 0; j < x.size; ++j) {
      const auto img = x.images.subspan(j * 784, 784);
      all_black |= std::all_of(img.begin(), img.end(), [&](float v) { return v == black[0]; });
    }
  }
  CHECK(all_black);
}

TEST_CASE("batcher: one Fashion-MNIST training epoch") {
  const auto& train = pcnas_test::fmnist(data::split::train);
  data::batcher b(train, {.batch_size = 128, .seed = 1});
  CHECK(b.batches_per_epoch() == 468);
  std::vector<std::size_t> label_counts(10, 0);
  std::vector<bool> seen(train.count, false);
  for (std::size_t k = 0; k < b.batches_per_epoch(); ++k) {
    const auto x = b.next();
    REQUIRE(x.size == 128);
    REQUIRE(x.height == 28);
    REQUIRE(x.width == 28);
    REQUIRE(x.channels == 1);
    for (std::size_t j = 0; j < x.size; ++j) {
      REQUIRE_FALSE(seen[x.indices[j]]);
      seen[x.indices[j]] = true;
      ++label_counts[x.labels[j]];
    }
  }
  CHECK(std::count(seen.begin(), seen.end(), true) == 468 * 128);
  for (auto n : label_counts) CHECK(n > 5800);  // 96 images dropped at most
}

TEST_CASE("batcher: arguments that cannot work are refused") {
  const auto ds = synthetic(10, 2);
  CHECK_THROWS_AS(data::batcher(ds, {.batch_size = 0}), std::invalid_argument);
  CHECK_THROWS_AS(data::batcher(ds, {.batch_size = 11}), std::invalid_argument);
  CHECK_NOTHROW(data::batcher(ds, {.batch_size = 11, .mode = data::batch_mode::eval}));
  data::dataset empty = synthetic(0, 2);
  CHECK_THROWS_AS(data::batcher(empty, {.batch_size = 1, .mode = data::batch_mode::eval}), std::invalid_argument);
  data::dataset broken = ds;
  broken.labels[3] = 2;
  CHECK_THROWS_AS(data::batcher(broken, {.batch_size = 2}), std::logic_error);
}
