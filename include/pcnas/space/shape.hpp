// Shapes and cost records shared by op descriptors, layers and cost models.
#pragma once

#include <string>

#include <cstdint>

namespace pcnas::space {

/// The shape of one image's activation: channels × height × width.
struct tensor_shape {
  int channels = 0;
  int height = 0;
  int width = 0;
  friend constexpr bool operator==(const tensor_shape&, const tensor_shape&) = default;
  [[nodiscard]] constexpr std::int64_t elements() const {
    return std::int64_t{channels} * height * width;
  }
};

/// Output size of a "same"-padded window of odd size: ceil(size / stride).
[[nodiscard]] constexpr int strided_size(int size, int stride) {
  return stride > 0 ? (size - 1) / stride + 1 : size;  // a bad stride is reported by the layer check
}

/// Analytic cost of one op for one image. MACs are multiply-adds (what mobile
/// NAS papers call FLOPs); params follow PyTorch's count (conv/FC weights,
/// biases, BN scale and shift); activation bytes are the float32 outputs of
/// each convolution (after its fused BN/ReLU6) that training keeps per image.
struct op_cost {
  std::int64_t macs = 0;
  std::int64_t params = 0;
  std::int64_t activation_bytes = 0;
  constexpr op_cost& operator+=(const op_cost& o) {
    macs += o.macs;
    params += o.params;
    activation_bytes += o.activation_bytes;
    return *this;
  }
  friend constexpr op_cost operator+(op_cost a, const op_cost& b) { return a += b; }
  friend constexpr bool operator==(const op_cost&, const op_cost&) = default;
};

inline constexpr std::int64_t bytes_per_activation = 4;  // float32

/// "CxHxW", as the library's messages and tables write a shape.
inline std::string to_string(const tensor_shape& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width);
}

}  // namespace pcnas::space
