// How the contract's flat NHWC buffers are seen as ATen tensors: views, never copies, so that an
// ATen call writes straight into the caller's buffer. Used by the LibTorch backend.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace pcnas::backend::libtorch::detail {

// The first n elements of a flat tensor. A tensor may be larger than a call needs (the modules
// reuse pooled buffers), so every call narrows first; a smaller or undefined one is the caller's
// error, said with the call's name.
inline at::Tensor first(const at::Tensor& t, index n, const char* op) {
  if (!t.defined())
    throw std::invalid_argument(std::string("pcnas LibTorch backend: ") + op +
                                " got an undefined tensor (one not made by allocate())");
  if (t.dim() != 1 || !t.is_contiguous())
    throw std::invalid_argument(std::string("pcnas LibTorch backend: ") + op +
                                " needs the flat, contiguous tensors that allocate() returns");
  if (t.numel() < n)
    throw std::out_of_range(std::string("pcnas LibTorch backend: ") + op + " got a tensor of " +
                            std::to_string(t.numel()) + " elements where it needs " + std::to_string(n));
  return t.narrow(0, 0, n);
}

// A [rows, cols] row-major matrix: pixels × channels, batch × features, or a 1×1 conv's weights.
inline at::Tensor matrix(const at::Tensor& t, index rows, index cols, const char* op) {
  return first(t, rows * cols, op).view({rows, cols});
}

// An NHWC activation as the [N, C, H, W] tensor ATen's convolutions take: a permuted view, which
// ATen recognises as the channels-last memory format and computes on without repacking.
inline at::Tensor nchw(const at::Tensor& t, const act_shape& s, const char* op) {
  return first(t, s.numel(), op).view({s.n, s.h, s.w, s.c}).permute({0, 3, 1, 2});
}

// A [rows, channels] matrix of pixels as a channels-last batch of images, for the 1×1
// convolutions. Any split of the rows into N × H × 1 pixels gives the same 1×1 convolution; N is
// made at least 16 where the rows allow, because ATen sends a 1×1 convolution of a smaller batch
// on one thread to its im2col + BLAS path instead of oneDNN.
inline at::Tensor pixels(const at::Tensor& t, index rows, index channels, const char* op) {
  index batch = 1;
  for (index d = 16; d <= 256 && d <= rows; ++d)
    if (rows % d == 0) {
      batch = d;
      break;
    }
  return first(t, rows * channels, op).view({batch, rows / batch, 1, channels}).permute({0, 3, 1, 2});
}

// 1×1 conv weights, [in][out], as ATen's [out][in][1][1].
inline at::Tensor pointwise_oihw(const at::Tensor& w, index in, index out, const char* op) {
  return first(w, in * out, op).view({in, out}).t().unsqueeze(2).unsqueeze(3);
}

// Dense conv weights, [kh][kw][in][out] (HWIO), as ATen's [out][in][kh][kw].
inline at::Tensor oihw(const at::Tensor& w, index kernel, index in, index out, const char* op) {
  return first(w, kernel * kernel * in * out, op).view({kernel, kernel, in, out}).permute({3, 2, 0, 1});
}

// Depthwise weights, [kh][kw][c], as ATen's grouped-convolution weights [c][1][kh][kw].
inline at::Tensor depthwise_oihw(const at::Tensor& w, index kernel, index c, const char* op) {
  return first(w, kernel * kernel * c, op).view({kernel, kernel, c}).permute({2, 0, 1}).unsqueeze(1);
}

}  // namespace pcnas::backend::libtorch::detail
