// A searchable layer without any choice.
// expect: check_layer<1, 8, .*the layer's choice list is empty
#include <pcnas/space.hpp>
using namespace pcnas::space;
#ifdef PCNAS_MISUSE
using second = choices<>;
#else
using second = choices<mbconv<5, 6>>;
#endif
using s = search_space<input<1, 8, 8>, stem<fixed<conv<3>, 8>>,
                       body<layer<8, 8, 1, choices<mbconv<3, 3>>>, layer<8, 8, 1, second>>, head<8, 2>>;
static_assert(s::is_valid);
