// A layer with stride 0.
// expect: check_layer<0, 8, .*the layer's stride must be positive
#include <pcnas/space.hpp>
using namespace pcnas::space;
#ifdef PCNAS_MISUSE
constexpr int stride = 0;
#else
constexpr int stride = 2;
#endif
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>,
                       body<layer<8, 16, stride, choices<mbconv<3, 3>>>>, head<8, 2>>;
static_assert(s::is_valid);
