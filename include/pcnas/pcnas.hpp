// The umbrella header: search spaces, their costs, the search. Never a backend:
// backends are opt-in headers under pcnas/backend/.
#pragma once

#include <pcnas/config.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/space/layer.hpp>
#include <pcnas/space/ops.hpp>
#include <pcnas/space/presets.hpp>
#include <pcnas/space/space.hpp>
