// Module header: the JSON formats (nlohmann-json): latency tables and their calibration record,
// search results, architectures, the event log, a run's stored options. Part of the `io`
// component; namespace pcnas::io.
#pragma once

#include <pcnas/json/arch.hpp>
#include <pcnas/json/event_log.hpp>
#include <pcnas/json/fields.hpp>
#include <pcnas/json/latency_table.hpp>
#include <pcnas/json/run_options.hpp>
#include <pcnas/json/search_result.hpp>
