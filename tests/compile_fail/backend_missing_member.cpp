// A user backend without the depthwise weight gradient: using it names the missing part.
// expect: A pcnas backend must provide the depthwise convolution
#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/mbconv.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace user {

using pcnas::backend::index;
namespace pb = pcnas::backend;

struct stub {
  using value_type = float;
  struct tensor {};
  struct label_tensor {};
  using bn = pb::batch_norm_tensors<tensor>;

  tensor allocate(index) { return {}; }
  label_tensor allocate_labels(index) { return {}; }
  void fill(index, float, tensor&) {}
  void copy(index, const tensor&, tensor&) {}
  void upload(std::span<const float>, tensor&) {}
  void download(const tensor&, std::span<float>) {}
  void upload_labels(std::span<const std::int32_t>, label_tensor&) {}
  void synchronize() {}
  std::string name() const { return "stub"; }

  void conv2d_forward(const pb::conv2d_desc&, const tensor&, const tensor&, tensor&) {}
  void conv2d_backward_data(const pb::conv2d_desc&, const tensor&, const tensor&, tensor&) {}
  void conv2d_backward_filter(const pb::conv2d_desc&, const tensor&, const tensor&, tensor&) {}
  void pointwise_forward(const pb::pointwise_desc&, const tensor&, const tensor&, tensor&) {}
  void pointwise_backward_data(const pb::pointwise_desc&, const tensor&, const tensor&, tensor&, bool) {}
  void pointwise_backward_filter(const pb::pointwise_desc&, const tensor&, const tensor&, tensor&) {}
  void depthwise_forward(const pb::depthwise_desc&, const tensor&, const tensor&, tensor&) {}
  void depthwise_backward_data(const pb::depthwise_desc&, const tensor&, const tensor&, tensor&) {}
#ifndef PCNAS_MISUSE
  void depthwise_backward_filter(const pb::depthwise_desc&, const tensor&, const tensor&, tensor&) {}
#endif
  void batch_norm_forward_train(const pb::batch_norm_desc&, bn, const tensor&, tensor&, double) {}
  void batch_norm_forward_inference(const pb::batch_norm_desc&, bn, const tensor&, tensor&) {}
  void batch_norm_backward(const pb::batch_norm_desc&, bn, const tensor&, const tensor&, tensor&) {}
  void relu6_forward(index, const tensor&, tensor&) {}
  void relu6_backward(index, const tensor&, const tensor&, tensor&) {}
  void add(index, const tensor&, const tensor&, tensor&) {}
  void global_avg_pool_forward(const pb::act_shape&, const tensor&, tensor&) {}
  void global_avg_pool_backward(const pb::act_shape&, const tensor&, tensor&) {}
  void linear_forward(const pb::linear_desc&, const tensor&, const tensor&, const tensor&, tensor&) {}
  void linear_backward_data(const pb::linear_desc&, const tensor&, const tensor&, tensor&) {}
  void linear_backward_params(const pb::linear_desc&, const tensor&, const tensor&, tensor&, tensor&) {}
  void softmax_cross_entropy_forward(const pb::cross_entropy_desc&, const tensor&, const label_tensor&, tensor&) {}
  void softmax_cross_entropy_backward(const pb::cross_entropy_desc&, const tensor&, const label_tensor&, tensor&) {}
  void sgd_update(const pb::sgd_desc&, tensor&, const tensor&, tensor&) {}
};

}  // namespace user

// Instantiating a module checks the backend.
static_assert(sizeof(pcnas::nn::mbconv<user::stub>) > 0);
