// Module header: the search methods (PC-NAS and the baselines), the driver they run in, their
// budgets and the supernet contract they search. Backend-agnostic; no files but checkpoints.
#pragma once

#include <pcnas/search/budgets.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/evolution.hpp>
#include <pcnas/search/method_table.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/random_search.hpp>
#include <pcnas/search/rescore.hpp>
#include <pcnas/search/spos_evolution.hpp>
#include <pcnas/search/supernet_concept.hpp>
#include <pcnas/search/uniform_training.hpp>
