#include "common/pareto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace stylesweep {
namespace {

using ::testing::ElementsAre;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(ParetoTest, DominatesNeedsNoWorseEverywhereAndBetterSomewhere) {
  EXPECT_TRUE(Dominates({1, 2}, {1, 3}));
  EXPECT_TRUE(Dominates({1, 2}, {2, 3}));
  EXPECT_FALSE(Dominates({1, 2}, {1, 2}));  // equal points do not dominate each other
  EXPECT_FALSE(Dominates({1, 3}, {2, 2}));  // a trade-off
  EXPECT_FALSE(Dominates({1, 2}, {1, 2, 3}));
  EXPECT_FALSE(Dominates({}, {}));
  // NaN counts as +infinity: worse than any number, equal to another NaN.
  EXPECT_TRUE(Dominates({1, 5}, {kNaN, 5}));
  EXPECT_FALSE(Dominates({kNaN, 5}, {1, 5}));
  EXPECT_TRUE(Dominates({kNaN, 4}, {kNaN, 5}));
  EXPECT_FALSE(Dominates({kNaN, 5}, {kNaN, 5}));
}

// Eight points with known ranks: a front of five (two of them equal, one
// with a NaN that only its second coordinate keeps there), then three layers.
TEST(ParetoTest, RanksAFixedTable) {
  const std::vector<std::vector<double>> points = {
      {1, 5},     // 0: front
      {2, 3},     // 1: front
      {4, 1},     // 2: front
      {3, 4},     // 3: dominated by 1 only -> 1
      {5, 5},     // 4: dominated by 3 (and the front) -> 2
      {2, 3},     // 5: equal to 1 -> front as well
      {kNaN, 0},  // 6: nothing is lower on the second -> front
      {kNaN, 6},  // 7: dominated by everything, 4 included -> 3
  };
  EXPECT_THAT(ParetoRanks(points), ElementsAre(0, 0, 0, 1, 2, 0, 0, 3));
  EXPECT_THAT(ParetoFront(points), ElementsAre(0, 1, 2, 5, 6));
}

TEST(ParetoTest, EqualPointsShareTheirRank) {
  EXPECT_THAT(ParetoRanks({{1, 1}, {1, 1}, {1, 1}}), ElementsAre(0, 0, 0));
  // A dominated point and its duplicate: both one rank down.
  EXPECT_THAT(ParetoRanks({{2, 2}, {1, 1}, {2, 2}}), ElementsAre(1, 0, 1));
  EXPECT_THAT(ParetoFront({{2, 2}, {1, 1}, {2, 2}}), ElementsAre(1));
}

TEST(ParetoTest, ThreeObjectivesAndEmptyInput) {
  EXPECT_THAT(ParetoRanks({{1, 2, 3}, {1, 2, 4}, {0, 9, 9}, {1, 3, 4}}), ElementsAre(0, 1, 0, 2));
  EXPECT_TRUE(ParetoRanks({}).empty());
  EXPECT_TRUE(ParetoFront({}).empty());
  // A point of every NaN is worst, and still ranked.
  EXPECT_THAT(ParetoRanks({{kNaN, kNaN}, {0, 0}}), ElementsAre(1, 0));
}

}  // namespace
}  // namespace stylesweep
