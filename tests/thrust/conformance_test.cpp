// The backend conformance kit (pcnas/testing) run against the Thrust backend, as a downstream
// team runs it against theirs.
#include <pcnas/backend/thrust.hpp>
#include <pcnas/testing/conformance.hpp>

PCNAS_BACKEND_CONFORMANCE(pcnas::backend::thrust::backend)
