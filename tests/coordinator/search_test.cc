// The search strategies and early termination as pure functions: no store,
// no clock.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "coordinator/scheduler/early_stop.h"
#include "coordinator/scheduler/search/tpe.h"

namespace stylesweep {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Branin on [-5, 10] x [0, 15], from two quantiles in [0, 1); its minimum is
// about 0.398.
double Branin(const std::vector<double>& u) {
  const double x = -5 + 15 * u[0];
  const double y = 15 * u[1];
  const double b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, t = 1 / (8 * kPi);
  return std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - t) * std::cos(x) + 10;
}

// A 3-D quadratic with one categorical coordinate (best: index 2).
double Bowl(const std::vector<double>& u) {
  const double cat[] = {4.0, 1.0, 0.0, 2.0};
  return 10 * std::pow(u[0] - 0.3, 2) + 10 * std::pow(u[1] - 0.8, 2) + cat[static_cast<int>(u[2])];
}

double BestOf(const std::vector<SearchDimension>& space, double (*objective)(const std::vector<double>&),
              uint64_t seed, int budget, bool bayes) {
  std::vector<Observation> history;
  double best = 1e300;
  for (int i = 0; i < budget; ++i) {
    SweepRandom random(seed, static_cast<uint64_t>(i));
    std::vector<double> point;
    if (bayes) {
      point = SuggestTpe(space, history, random);
    } else {
      for (const SearchDimension& d : space) {
        point.push_back(d.choices > 0 ? static_cast<double>(random.Choice(d.choices, d.probabilities))
                                      : random.Uniform());
      }
    }
    const double value = objective(point);
    best = std::min(best, value);
    history.push_back(Observation{point, value});
  }
  return best;
}

TEST(TpeTest, BeatsRandomSearchOnBraninOnAverage) {
  const std::vector<SearchDimension> space = {{0, {}}, {0, {}}};
  double tpe = 0, random = 0;
  const int seeds = 20;
  for (int seed = 0; seed < seeds; ++seed) {
    tpe += BestOf(space, Branin, seed, 40, true) / seeds;
    random += BestOf(space, Branin, seed, 40, false) / seeds;
  }
  EXPECT_LT(tpe, random) << "TPE mean best " << tpe << ", random " << random;
}

TEST(TpeTest, BeatsRandomSearchWithACategoricalCoordinate) {
  const std::vector<SearchDimension> space = {{0, {}}, {0, {}}, {4, {}}};
  double tpe = 0, random = 0;
  const int seeds = 20;
  for (int seed = 0; seed < seeds; ++seed) {
    tpe += BestOf(space, Bowl, seed, 30, true) / seeds;
    random += BestOf(space, Bowl, seed, 30, false) / seeds;
  }
  EXPECT_LT(tpe, random) << "TPE mean best " << tpe << ", random " << random;
}

TEST(TpeTest, IsDeterministicAndStaysInTheSpace) {
  const std::vector<SearchDimension> space = {{0, {}}, {3, {0.2, 0.3, 0.5}}};
  std::vector<Observation> history;
  for (int i = 0; i < 20; ++i) history.push_back(Observation{{i / 20.0, static_cast<double>(i % 3)}, i * 1.0});
  SweepRandom a(5, 20), b(5, 20);
  const auto pa = SuggestTpe(space, history, a);
  const auto pb = SuggestTpe(space, history, b);
  EXPECT_EQ(pa, pb);
  ASSERT_EQ(pa.size(), 2u);
  EXPECT_GE(pa[0], 0);
  EXPECT_LT(pa[0], 1);
  EXPECT_GE(pa[1], 0);
  EXPECT_LE(pa[1], 2);
}

TEST(EarlyStopTest, RungsAreMinIterTimesPowersOfEtaBeforeTheLastStep) {
  EXPECT_EQ(Rungs({"hyperband", 3, 3}, 81), (std::vector<int>{3, 9, 27}));
  EXPECT_EQ(Rungs({"median", 10, 2}, 100), (std::vector<int>{10, 20, 40, 80}));
  EXPECT_TRUE(Rungs({"", 3, 3}, 81).empty());
  EXPECT_TRUE(Rungs({"hyperband", 100, 3}, 50).empty());
}

TEST(EarlyStopTest, HyperbandKeepsTheBestThirdOfTheRunsAtARung) {
  const EarlyTerminate rule{"hyperband", 3, 3};
  EXPECT_FALSE(ShouldPrune(rule, 5.0, {}));          // alone at the rung
  EXPECT_TRUE(ShouldPrune(rule, 5.0, {4.0}));        // keep 1 of 2
  EXPECT_FALSE(ShouldPrune(rule, 3.0, {4.0, 6.0}));  // the best of 3
  EXPECT_FALSE(ShouldPrune(rule, 4.5, {4.0, 6.0, 7.0}));  // keep 2 of 4: second
  EXPECT_TRUE(ShouldPrune(rule, 6.5, {4.0, 6.0, 7.0}));
}

TEST(EarlyStopTest, MedianRuleNeedsTwoOthersAndStopsRunsWorseThanTheirMedian) {
  const EarlyTerminate rule{"median", 3, 3};
  EXPECT_FALSE(ShouldPrune(rule, 9.0, {1.0}));
  EXPECT_TRUE(ShouldPrune(rule, 9.0, {1.0, 2.0}));
  EXPECT_FALSE(ShouldPrune(rule, 1.5, {1.0, 2.0}));
  EXPECT_FALSE(ShouldPrune(rule, 2.0, {1.0, 2.0, 3.0}));
}

TEST(EarlyStopTest, ComputeSavedCountsThePrunedRunsRemainingSteps) {
  RunRecord done, pruned, queued;
  done.state = RunState::kSucceeded;
  done.last_step = 100;
  done.params_json = R"({"steps":100})";
  pruned.state = RunState::kPruned;
  pruned.last_step = 10;
  pruned.params_json = R"({"steps":100})";
  queued.params_json = R"({"steps":100})";
  const ComputeSaved c = CountSteps({done, pruned, queued});
  EXPECT_EQ(c.steps_run, 110);
  EXPECT_EQ(c.steps_saved, 90);
}

// A run that diverged (+infinity) is the worst observation, and TPE learns
// from it: where runs blew up, it proposes no more.
TEST(TpeTest, LearnsToAvoidWhereRunsDiverged) {
  const std::vector<SearchDimension> space = {{0, {}}};
  std::vector<Observation> history;
  // Equal finite results all over the range, and, above 0.5, as many runs
  // that diverged: a search that ignored them would see no difference.
  for (int i = 0; i < 40; ++i) {
    history.push_back(Observation{{((i * 17) % 40 + 0.5) / 40}, 1.0});
    history.push_back(Observation{{0.5 + (i + 0.5) / 80}, std::numeric_limits<double>::infinity()});
  }
  int above = 0;
  for (uint64_t draw = 0; draw < 50; ++draw) {
    SweepRandom random(7, draw);
    if (SuggestTpe(space, history, random)[0] >= 0.5) ++above;
  }
  EXPECT_LE(above, 10) << "proposals in the region where runs diverged";  // ignoring them: about 30
}

}  // namespace
}  // namespace stylesweep
