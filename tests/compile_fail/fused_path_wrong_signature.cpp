// A backend wrapper that declares the fused MBConv with a parameter list of its own: the modules
// would silently take the op-by-op path; check_fused_paths names the mismatch.
// expect: This backend declares mbconv_forward or mbconv_backward but not as the contract states
#include <pcnas/backend/fused_paths.hpp>
#include <pcnas/testing/naive_backend.hpp>

namespace user {

struct wrapper : pcnas::testing::naive_backend<float> {
#ifdef PCNAS_MISUSE
  // The contract's mbconv_forward takes (desc, tensors, training, factor, x, z1, z2, z3, y).
  void mbconv_forward(const pcnas::backend::mbconv_desc&, const tensor&, tensor&) {}
#endif
};

}  // namespace user

static_assert(pcnas::backend::check_fused_paths<user::wrapper>());

int main() {}
