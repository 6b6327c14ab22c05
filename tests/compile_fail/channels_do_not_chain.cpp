// A layer whose input channels differ from the previous layer's output.
// expect: check_layer<2, 16, .*channels do not chain
#include <pcnas/space.hpp>
using namespace pcnas::space;
#ifdef PCNAS_MISUSE
constexpr int third_in = 24;
#else
constexpr int third_in = 16;
#endif
using c = choices<mbconv<3, 3>>;
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>,
                       body<layer<8, 8, 1, c>, layer<8, 16, 2, c>, layer<third_in, 32, 1, c>>, head<8, 2>>;
static_assert(s::is_valid);
