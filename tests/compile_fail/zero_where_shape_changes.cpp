// A zero (skip) choice on a layer that changes channels.
// expect: check_choice<1, 8, pcnas::space::zero, 8, 16, 1>.*a zero \(identity\) choice needs a layer that keeps its shape
#include <pcnas/space.hpp>
using namespace pcnas::space;
#ifdef PCNAS_MISUSE
using last = choices<mbconv<3, 3>, zero>;
#else
using last = choices<mbconv<3, 3>>;
#endif
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>,
                       body<layer<8, 8, 1, choices<mbconv<3, 3>, zero>>, layer<8, 16, 1, last>>, head<8, 2>>;
static_assert(s::is_valid);
