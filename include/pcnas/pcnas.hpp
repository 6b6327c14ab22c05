// The umbrella header: search spaces, their costs and constraints, the search algorithms and
// ranking metrics. Never a backend (pcnas/backend/...), never a network (pcnas/nn.hpp), never
// I/O that needs a third-party library (pcnas/json.hpp, pcnas/data/...), nor the terminal
// progress line (pcnas/search/progress.hpp): those are opt-in headers.
#pragma once

#include <pcnas/config.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/cost/roofline.hpp>
#include <pcnas/cost/table.hpp>
#include <pcnas/eval/ranking.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/budgets.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/rescore.hpp>
#include <pcnas/search/spos_evolution.hpp>
#include <pcnas/search/supernet_concept.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/space/layer.hpp>
#include <pcnas/space/ops.hpp>
#include <pcnas/space/presets.hpp>
#include <pcnas/space/space.hpp>
