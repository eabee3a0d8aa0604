#pragma once
// Report text from a SimResult: summary.json, report.md and the time-series CSV. Pure string
// building (the CLI writes the files). Numbers are printed with fixed formats, so the same
// result gives byte-identical text.
//
//   std::string json = SummaryJson(result, sizing_or_null);
//
// Thread-safety: pure functions.

#include <string>

#include "sim/result.h"
#include "sim/sizing.h"

namespace tokenpool::sim {

std::string SummaryJson(const SimResult& r, const SizingResult* sizing);
std::string ReportMarkdown(const SimResult& r, const SizingResult* sizing);
// t_s, then per tenant: tokens in the interval, share of the interval's tokens, debt; then per
// pool: serving replicas, utilization, queued.
std::string TimeSeriesCsv(const SimResult& r);

}  // namespace tokenpool::sim
