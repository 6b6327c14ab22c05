// Module header: everything needed to write and inspect search spaces.
#pragma once

#include <pcnas/cost/analytic.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/space/presets.hpp>
