// The Eigen backend's tuning constants, in one place (as CUB gathers its block sizes in tuning
// policies): how work is split over threads, how large the cache blocks are, how wide the
// register blocks are. None of them changes what is computed beyond the order of float sums;
// each is a measured trade-off for the fmnist shapes on 2 to 16 cores with AVX2 or AVX-512.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <algorithm>

namespace pcnas::backend::eigen::detail {

struct kernel_policy {
  // --- threads: the least work per thread for which a second thread pays ------------------------
  // Rows (pixels) of a 1×1 convolution per thread; below it, fewer threads are woken.
  static constexpr index gemm_min_rows = 256;
  // Rows per thread of the batch-norm statistic and gradient sums.
  static constexpr index bn_sum_min_rows = 256;
  // Rows per thread of the elementwise batch-norm apply (and of the stem's materialised dz).
  static constexpr index bn_apply_min_rows = 64;
  // Images per thread of the head's pooling (forward and backward).
  static constexpr index head_min_images = 8;
  // Images per thread of global average pooling.
  static constexpr index pool_min_images = 16;
  // Input rows (n, h) per thread of the dense convolution's data gradient.
  static constexpr index conv_data_min_rows = 4;
  // Work items per thread of the depthwise and dense convolutions (an image, or an image and a
  // block of channels: each is already large).
  static constexpr index conv_min_items = 1;
  // Elements per thread of plain elementwise ops (ReLU6, add, the SGD step).
  static constexpr index elementwise_min = 16384;

  // --- cache blocks -----------------------------------------------------------------------------
  // Rows of a 1×1-convolution block: input and output rows together about `gemm_block_floats`
  // floats (512 KiB), well inside L2; a multiple of 16 rows, at least 16 and at most 1024.
  static constexpr index gemm_block_floats = 131072;
  static constexpr index gemm_block_align = 16, gemm_block_min = 16, gemm_block_max = 1024;
  static index gemm_block_rows(index K, index N) noexcept {
    return std::clamp<index>(gemm_block_floats / (K + N) / gemm_block_align * gemm_block_align, gemm_block_min,
                             gemm_block_max);
  }
  // Rows of a 1×1-convolution block in the evaluation pipeline (fused.hpp, mbconv_forward_eval),
  // which keeps a block, an image of the hidden tensors and their row windows in L2 at once:
  // half of gemm_block_rows, at most `eval_block_max`.
  static constexpr index eval_block_max = 256;
  static index eval_block_rows(index K, index N) noexcept {
    return std::clamp<index>(gemm_block_floats / 2 / (K + N) / gemm_block_align * gemm_block_align, gemm_block_min,
                             eval_block_max);
  }
  // Images per thread of the evaluation pipeline (each thread recomputes up to an image and a few
  // rows at its boundaries).
  static constexpr index eval_min_images = 4;
  // Rows of a batch-norm statistics chunk: at most `bn_chunk_floats` values (32 KiB, so that the
  // second pass over the chunk reads L1), between 8 and 256 rows.
  static constexpr index bn_chunk_floats = 8192;
  static constexpr index bn_chunk_min = 8, bn_chunk_max = 256;
  static index bn_chunk_rows(index C) noexcept {
    return std::clamp<index>(bn_chunk_floats / std::max<index>(C, 1), bn_chunk_min, bn_chunk_max);
  }

  // 1×1 convolutions (forward) with at most this many input channels run the direct kernel
  // (gemm.hpp, direct_gemm_fits: no packing, which costs Eigen as much as the products when K is
  // this small), with
  // register blocks of `direct_gemm_rows` rows × `direct_gemm_vectors` vectors of outputs.
  static constexpr index direct_gemm_max_k = 48;
  // With AVX-512 (32 registers) the direct kernel runs 8 rows × 3 vectors and beats Eigen's
  // packed kernel on every fmnist 1×1 shape in cache (1.3–2× at K = 40–480), so it takes every
  // product it computes with Eigen's bits (gemm.hpp, direct_gemm_exact), up to
  // `direct_gemm_max_k_exact` input channels; with AVX2 (16 registers) 4 rows × 3 vectors, the
  // small-K shapes only.
#if defined(__AVX512F__)
  static constexpr int direct_gemm_rows = 8, direct_gemm_vectors = 3;
  static constexpr bool direct_gemm_beyond_max_k = true;
#else
  static constexpr int direct_gemm_rows = 4, direct_gemm_vectors = 3;
  static constexpr bool direct_gemm_beyond_max_k = false;
#endif
  static constexpr index direct_gemm_max_k_exact = 1024;

  // --- register blocks --------------------------------------------------------------------------
  // Output columns that share each weight load in the depthwise kernels: 7 or 8 where they divide
  // the row (the fmnist rows are 28, 14 and 7 wide), else 4 (the remainder one at a time).
  static int chunk_width(index width) noexcept { return width % 7 == 0 ? 7 : width % 8 == 0 ? 8 : 4; }
};

}  // namespace pcnas::backend::eigen::detail
