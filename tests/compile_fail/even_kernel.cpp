// An MBConv with an even kernel: 'same' padding cannot keep the shape.
// expect: check_choice<0, 8, pcnas::space::mbconv<4, 6>.*kernel sizes must be positive and odd
#include <pcnas/space.hpp>
using namespace pcnas::space;
#ifdef PCNAS_MISUSE
using c = choices<mbconv<3, 6>, mbconv<4, 6>>;
#else
using c = choices<mbconv<3, 6>, mbconv<5, 6>>;
#endif
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>, body<layer<8, 8, 1, c>>, head<8, 2>>;
static_assert(s::is_valid);
