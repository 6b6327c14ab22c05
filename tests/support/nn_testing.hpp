// The test helpers now ship with the conformance kit (pcnas/testing); the tests keep their old name
// for them.
#pragma once

#include <pcnas/testing/compare.hpp>

namespace testing_nn = pcnas::testing;
