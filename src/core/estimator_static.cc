// The static mode: a fixed bytes/token ratio (EstimatorConfig::static_bytes_per_token) over text
// and structured bytes, plus framing and images. Learns nothing; the baseline of the others.
#include "estimator_internal.h"

namespace tokenpool::estimator_internal {
namespace {

class StaticEstimator final : public TokenEstimator {
 public:
  explicit StaticEstimator(const EstimatorConfig& c) : config_(c) {}
  std::string_view Name() const override { return "static"; }
  TokenEstimate Estimate(const RequestFeatures& f, const Category&) const override {
    return StaticEstimate(config_, f);
  }
  void Observe(const RequestFeatures&, const Category&, int64_t) override {}
  int CategoryCount() const override { return 0; }
  std::vector<EstimatorCategoryState> Categories() const override { return {}; }

 private:
  EstimatorConfig config_;
};

}  // namespace

std::unique_ptr<TokenEstimator> MakeStaticEstimator(const EstimatorConfig& c) {
  return std::make_unique<StaticEstimator>(c);
}

}  // namespace tokenpool::estimator_internal
