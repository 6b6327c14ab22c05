// The library's own backends through the conformance kit that downstream backends use: the
// Eigen backend (float), and the reference backend itself in double (its gradients against
// finite differences, entry by entry) and in float (which proves the float tolerances on plain
// loops, independently of Eigen's kernels).
#include <pcnas/backend/eigen.hpp>
#include <pcnas/testing/conformance.hpp>
#include <pcnas/testing/naive_backend.hpp>

PCNAS_BACKEND_CONFORMANCE(pcnas::backend::eigen::backend)
PCNAS_BACKEND_CONFORMANCE(pcnas::testing::naive_backend<double>)
PCNAS_BACKEND_CONFORMANCE(pcnas::testing::naive_backend<float>)

// ---------------------------------------------------------------------------------------------
// The kit can fail: backends with one wrong member each must not pass it.
// ---------------------------------------------------------------------------------------------

namespace {

using reference = pcnas::testing::naive_backend<double>;
namespace pb = pcnas::backend;

// dw of the 1x1 convolution off by a factor: both the reference comparison and the finite
// differences must see it.
struct wrong_pointwise_filter : reference {
  void pointwise_backward_filter(const pb::pointwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    reference::pointwise_backward_filter(d, x, dy, dw);
    for (pb::index i = 0; i < d.weight_size(); ++i) dw.data[static_cast<std::size_t>(i)] *= 1.01;
  }
};

// Batch norm backward that forgets the gradient through the batch mean: right in spirit,
// wrong in the details.
struct wrong_batch_norm : reference {
  void batch_norm_backward(const pb::batch_norm_desc& d, pb::bn_tensors_t<reference> bn, const tensor& x,
                           const tensor& dy, tensor& dx) {
    reference::batch_norm_backward(d, bn, x, dy, dx);
    for (pb::index c = 0; c < d.channels; ++c) {
      double mean = 0;
      for (pb::index r = 0; r < d.rows; ++r) mean += dy.data[static_cast<std::size_t>(r * d.channels + c)];
      mean /= static_cast<double>(d.rows);
      const double k = bn.gamma.data[static_cast<std::size_t>(c)] * bn.saved_inv_std.data[static_cast<std::size_t>(c)];
      for (pb::index r = 0; r < d.rows; ++r) dx.data[static_cast<std::size_t>(r * d.channels + c)] += k * mean;
    }
  }
};

}  // namespace

TEST_CASE("the kit fails a backend whose 1x1 convolution filter gradient is 1 % off" * doctest::should_fail()) {
  wrong_pointwise_filter b;
  pcnas::testing::check_pointwise(b, pcnas::testing::tolerance_for<double>());
}

TEST_CASE("the kit fails a backend whose batch-norm backward misses the mean term" * doctest::should_fail()) {
  wrong_batch_norm b;
  pcnas::testing::check_batch_norm(b, pcnas::testing::tolerance_for<double>());
}

TEST_CASE("the kit's float rule passes a right gradient") {
  // In float, finite differences alone must see an error of a few percent: run the check with a
  // loss whose true gradient is known.
  const pcnas::testing::host values{0.5, -1.0, 2.0, 0.25};
  const auto loss = [](const pcnas::testing::host& v) { return 3 * v[0] - v[1] * v[1] + 0.5 * v[2] + v[3]; };
  pcnas::testing::host right{3.0, 2.0, 0.5, 1.0};
  pcnas::testing::check_gradient_fd<float>(loss, values, right, pcnas::testing::tolerance_for<float>(), "right");
}

TEST_CASE("the kit's float rule fails a gradient 3 % off, as it must" * doctest::should_fail()) {
  const pcnas::testing::host values{0.5, -1.0, 2.0, 0.25};
  const auto loss = [](const pcnas::testing::host& v) { return 3 * v[0] - v[1] * v[1] + 0.5 * v[2] + v[3]; };
  pcnas::testing::host wrong{3.0, 2.0 * 1.03, 0.5, 1.0};
  pcnas::testing::check_gradient_fd<float>(loss, values, wrong, pcnas::testing::tolerance_for<float>(), "wrong");
}

// ---------------------------------------------------------------------------------------------
// The fused-path report.
// ---------------------------------------------------------------------------------------------

namespace {
// A wrapper that forwards every required call but declares mbconv_forward with a parameter
// list of its own: the modules cannot use it, and the report must say so.
struct wrapper_with_wrong_mbconv : reference {
  void mbconv_forward(const pb::mbconv_desc&, const tensor&, tensor&) {}
};
}  // namespace

// Every path that fuses computation; the device-loop members are for backends with a device.
static_assert(pb::num_fused_paths_provided<pb::eigen::backend>() == pb::num_compute_paths);
static_assert(!pb::has_sgd_update_many<pb::eigen::backend> && !pb::has_gather<pb::eigen::backend>);
static_assert(pb::num_fused_paths_provided<reference>() == 0);
static_assert(!pb::fused_paths<reference>[2].declared);
static_assert(pb::fused_paths<wrapper_with_wrong_mbconv>[2].mismatched());
static_assert(!pb::fused_paths<wrapper_with_wrong_mbconv>[0].mismatched());

TEST_CASE("the fused-path report names each path and says which are provided, missing or mis-declared") {
  const std::string eigen = pb::fused_path_report<pb::eigen::backend>();
  CHECK(eigen.find("provides 6 of 8") != std::string::npos);
  CHECK(eigen.find("[yes] mbconv") != std::string::npos);
  const std::string naive = pb::fused_path_report<reference>();
  CHECK(naive.find("provides 0 of 8") != std::string::npos);
  CHECK(naive.find("[no]  depthwise_backward") != std::string::npos);
  const std::string wrong = pb::fused_path_report<wrapper_with_wrong_mbconv>();
  CHECK(wrong.find("[WRONG SIGNATURE, not used] mbconv") != std::string::npos);
}
