// Which optional fused paths a backend provides: a compile-time list, a printable report, and a
// check that turns a fused member with the wrong signature into an error. The modules find
// fused paths by requires-expressions and fall back to the primitives, so without this check a
// misspelt parameter list (or a wrapper that forwards only some overloads) silently costs speed.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace pcnas::backend {

namespace detail {

// Whether B declares a member with a given name, whatever its signature: a class that derives
// from B and from a class with a data member of that name makes `&derived::name` ambiguous
// exactly when B has one too (overloads and templates included).
#define PCNAS_DETAIL_DECLARES(member)                                                        \
  struct declares_##member##_probe {                                                         \
    int member;                                                                              \
  };                                                                                         \
  template <class B>                                                                         \
  struct declares_##member##_derived : B, declares_##member##_probe {};                      \
  template <class B>                                                                         \
  constexpr bool declares_##member() {                                                       \
    if constexpr (std::is_class_v<B> && !std::is_final_v<B>)                                 \
      return !requires { &declares_##member##_derived<B>::member; };                         \
    else                                                                                     \
      return false;                                                                          \
  }

PCNAS_DETAIL_DECLARES(batch_norm_relu6_forward_train)
PCNAS_DETAIL_DECLARES(batch_norm_relu6_forward_inference)
PCNAS_DETAIL_DECLARES(batch_norm_relu6_backward)
PCNAS_DETAIL_DECLARES(batch_norm_add_forward_train)
PCNAS_DETAIL_DECLARES(batch_norm_add_forward_inference)
PCNAS_DETAIL_DECLARES(mbconv_forward)
PCNAS_DETAIL_DECLARES(mbconv_backward)
PCNAS_DETAIL_DECLARES(conv_bn_relu6_forward)
PCNAS_DETAIL_DECLARES(conv_bn_relu6_backward)
PCNAS_DETAIL_DECLARES(head_forward)
PCNAS_DETAIL_DECLARES(head_backward)
PCNAS_DETAIL_DECLARES(depthwise_backward)
PCNAS_DETAIL_DECLARES(sgd_update_many)
PCNAS_DETAIL_DECLARES(gather_rows)
PCNAS_DETAIL_DECLARES(gather_labels)
#undef PCNAS_DETAIL_DECLARES

}  // namespace detail

/// One optional fused path: its name, what it replaces, whether B provides it (the concept is
/// satisfied) and whether B declares any of its members (so that declared && !provided means a
/// wrong signature).
struct fused_path {
  std::string_view name;
  std::string_view replaces;
  bool provided = false;
  bool declared = false;
  constexpr bool mismatched() const noexcept { return declared && !provided; }
};

inline constexpr std::size_t num_fused_paths = 8;
// The first six fuse computation; the last two serve a device-resident loop (one optimizer call
// per step, batches gathered from data uploaded once), which a CPU backend need not offer.
inline constexpr std::size_t num_compute_paths = 6;

/// The compile-time list, in the order of concept.hpp.
template <class B>
inline constexpr std::array<fused_path, num_fused_paths> fused_paths{{
    {"batch_norm_relu6", "batch_norm_forward_* + relu6_forward, and their backward", has_batch_norm_relu6<B>,
     detail::declares_batch_norm_relu6_forward_train<B>() || detail::declares_batch_norm_relu6_forward_inference<B>() ||
         detail::declares_batch_norm_relu6_backward<B>()},
    {"batch_norm_add", "batch_norm_forward_* + add(residual)", has_batch_norm_add<B>,
     detail::declares_batch_norm_add_forward_train<B>() || detail::declares_batch_norm_add_forward_inference<B>()},
    {"mbconv", "a whole MBConv block, forward and backward", has_fused_mbconv<B>,
     detail::declares_mbconv_forward<B>() || detail::declares_mbconv_backward<B>()},
    {"conv_bn_relu6", "the stem: conv2d + batch norm + relu6, forward and backward", has_fused_conv_bn_relu6<B>,
     detail::declares_conv_bn_relu6_forward<B>() || detail::declares_conv_bn_relu6_backward<B>()},
    {"head", "the head up to the pooled features: 1x1 conv + batch norm + relu6 + pooling", has_fused_head<B>,
     detail::declares_head_forward<B>() || detail::declares_head_backward<B>()},
    {"depthwise_backward", "depthwise_backward_data + depthwise_backward_filter", has_depthwise_backward<B>,
     detail::declares_depthwise_backward<B>()},
    {"sgd_update_many", "one sgd_update call per parameter tensor of a step", has_sgd_update_many<B>,
     detail::declares_sgd_update_many<B>()},
    {"gather", "uploading every training batch from the host", has_gather<B>,
     detail::declares_gather_rows<B>() || detail::declares_gather_labels<B>()},
}};

template <class B>
constexpr std::size_t num_fused_paths_provided() {
  std::size_t n = 0;
  for (const auto& p : fused_paths<B>) n += p.provided ? 1 : 0;
  return n;
}

/// One line per fused path: provided, not provided, or declared with a signature that does not
/// match the contract (and therefore not used).
template <class B>
std::string fused_path_report() {
  std::string out = "provides " + std::to_string(num_fused_paths_provided<B>()) + " of " +
                    std::to_string(num_fused_paths) + " optional fused paths:";
  for (const auto& p : fused_paths<B>) {
    out += "\n  ";
    out += p.provided ? "[yes] " : p.mismatched() ? "[WRONG SIGNATURE, not used] " : "[no]  ";
    out += p.name;
    out += " (";
    out += p.replaces;
    out += ")";
  }
  return out;
}

/// One error per fused path that B declares but whose members do not match concept.hpp. Call as
/// `static_assert(check_fused_paths<B>());` (the conformance kit does).
template <class B>
consteval bool check_fused_paths() {
  constexpr auto& p = fused_paths<B>;
  static_assert(!p[0].mismatched(),
                "This backend declares batch_norm_relu6_* members that do not match the contract, so the modules do "
                "not use them: see has_batch_norm_relu6 in pcnas/backend/concept.hpp for the three signatures.");
  static_assert(!p[1].mismatched(),
                "This backend declares batch_norm_add_* members that do not match the contract, so the modules do "
                "not use them: see has_batch_norm_add in pcnas/backend/concept.hpp for the two signatures.");
  static_assert(!p[2].mismatched(),
                "This backend declares mbconv_forward or mbconv_backward but not as the contract states, so the "
                "modules do not use them: see has_fused_mbconv in pcnas/backend/concept.hpp.");
  static_assert(!p[3].mismatched(),
                "This backend declares conv_bn_relu6_forward or conv_bn_relu6_backward but not as the contract "
                "states, so the modules do not use them: see has_fused_conv_bn_relu6 in pcnas/backend/concept.hpp.");
  static_assert(!p[4].mismatched(),
                "This backend declares head_forward or head_backward but not as the contract states, so the modules "
                "do not use them: see has_fused_head in pcnas/backend/concept.hpp.");
  static_assert(!p[5].mismatched(),
                "This backend declares depthwise_backward but not as the contract states, so the modules do not use "
                "it: see has_depthwise_backward in pcnas/backend/concept.hpp.");
  static_assert(!p[6].mismatched(),
                "This backend declares sgd_update_many but not as the contract states, so the optimizer does not "
                "use it: see has_sgd_update_many in pcnas/backend/concept.hpp.");
  static_assert(!p[7].mismatched(),
                "This backend declares gather_rows or gather_labels but not as the contract states, so the trainer "
                "does not use them: see has_gather in pcnas/backend/concept.hpp.");
  return true;
}

}  // namespace pcnas::backend
