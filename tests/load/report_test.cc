// WriteCsv and WriteJson: a write that does not reach the file (a full disk, /dev/full) is an
// error naming the flag, the path and the reason, not a silent success.
#include "load/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "../common/test_util.h"
#include "load/plan.h"

namespace tokenpool::load {
namespace {

using ::tokenpool::test::TempDir;

LoadPlan OnePlan() {
  LoadPlan plan;
  plan.tenants.push_back({"a", "ka", 1});
  plan.categories.push_back({"prose", ContentType::kProse, 1});
  plan.requests.push_back({});
  plan.duration_s = 1;
  return plan;
}

TEST(LoadReportTest, WritesReachTheFile) {
  TempDir dir;
  const LoadPlan plan = OnePlan();
  LoadResult result;
  result.records.resize(1);
  ASSERT_TRUE(WriteCsv(plan, result, dir.Path("rows.csv")).ok());
  ASSERT_TRUE(WriteJson(Summarize(plan, result), dir.Path("sum.json")).ok());
  std::stringstream csv;
  csv << std::ifstream(dir.Path("rows.csv")).rdbuf();
  EXPECT_NE(csv.str().find("\n0,a,,prose,0.000000,dropped,"), std::string::npos) << csv.str();
  std::stringstream json;
  json << std::ifstream(dir.Path("sum.json")).rdbuf();
  EXPECT_NE(json.str().find("\"planned\":1"), std::string::npos) << json.str();
}

// /dev/full accepts the open and fails every write with ENOSPC; stdio reports it only at the
// flush, so a check of ferror() before fclose() alone misses it.
TEST(LoadReportTest, AFullDiskIsAnErrorNamingTheFlagAndTheReason) {
  const LoadPlan plan = OnePlan();
  LoadResult result;
  result.records.resize(1);
  const Status csv = WriteCsv(plan, result, "/dev/full");
  ASSERT_FALSE(csv.ok());
  EXPECT_EQ(csv.message(), "--csv: cannot write \"/dev/full\": No space left on device");
  const Status json = WriteJson(Summarize(plan, result), "/dev/full");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.message(), "--json: cannot write \"/dev/full\": No space left on device");
}

}  // namespace
}  // namespace tokenpool::load
