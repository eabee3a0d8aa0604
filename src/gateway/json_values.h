// JSON values of the admin API's answers, as people and scripts expect to read them.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "tokenpool/resources.h"

namespace tokenpool::gateway {

// A double as JSON: an integer where it is one (Boost.JSON writes every double in exponent
// form, a concurrency of 1 as 1E0), null where it is not finite (JSON has no NaN or infinity;
// Boost.JSON would write bare NaN / Infinity, which no JSON parser reads).
boost::json::value JsonNumber(double v);
// {"token_rate", "kv_tokens", "concurrency"}, each a JsonNumber.
boost::json::object ResourceVectorJson(const ResourceVector& v);

}  // namespace tokenpool::gateway
