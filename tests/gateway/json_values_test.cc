#include "gateway/json_values.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <cmath>
#include <limits>

namespace tokenpool::gateway {
namespace {

std::string Text(double v) { return boost::json::serialize(JsonNumber(v)); }

// Whole numbers as integers (Boost.JSON wrote a concurrency of 1 as 1E0 and 448,304 KV tokens
// as 4.48304E5), fractions as doubles, and what JSON cannot say as null.
TEST(JsonNumberTest, WholeNumbersAreIntegers) {
  EXPECT_EQ(Text(1), "1");
  EXPECT_EQ(Text(0), "0");
  EXPECT_EQ(Text(-0.0), "0");
  EXPECT_EQ(Text(448304), "448304");
  EXPECT_EQ(Text(-3), "-3");
  EXPECT_EQ(Text(9007199254740991.0), "9007199254740991");
  EXPECT_TRUE(JsonNumber(1e300).is_double());  // past 2^53: no exact integer
  EXPECT_TRUE(JsonNumber(0.5).is_double());
  EXPECT_DOUBLE_EQ(JsonNumber(0.5).as_double(), 0.5);
  EXPECT_TRUE(JsonNumber(std::numeric_limits<double>::quiet_NaN()).is_null());
  EXPECT_TRUE(JsonNumber(std::numeric_limits<double>::infinity()).is_null());
  EXPECT_EQ(boost::json::serialize(ResourceVectorJson({.token_rate = 2500, .kv_tokens = 65536,
                                                       .concurrency = 0.5})),
            R"({"token_rate":2500,"kv_tokens":65536,"concurrency":5E-1})");
}

}  // namespace
}  // namespace tokenpool::gateway
