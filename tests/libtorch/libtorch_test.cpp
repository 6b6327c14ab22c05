// The LibTorch backend through the conformance kit (float, and double, where the kit's tolerances
// are tight enough to catch a wrong formula that float would hide).
#include <pcnas/backend/libtorch.hpp>  // first: the header must compile on its own
#include <pcnas/testing/conformance.hpp>

PCNAS_BACKEND_CONFORMANCE(pcnas::backend::libtorch::backend)
PCNAS_BACKEND_CONFORMANCE(pcnas::backend::libtorch::basic_backend<double>)
