// Fuzzes what the coordinator does with the text of a submitted sweep file:
// parse and validate it, map its image and weights references, then expand
// it (grid), draw its runs (random) or resolve points of its search space
// (bayes), and serialise each run as agents receive it.
//
// The input is the YAML text. The grid and run_cap are bounded by
// SweepLimits, as a deployment may bound them, so one input stays fast.
// Besides crashes, it checks what agents rely on: a run's parameters read
// back from their JSON are the same run, and a sweep makes as many runs as it
// says.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hash.h"
#include "common/run_params.h"
#include "common/sweep_spec.h"

namespace stylesweep {
namespace {

constexpr size_t kMaxRuns = 64;
constexpr int kBayesPoints = 8;

// Every run as the coordinator stores it and an agent reads it back.
void CheckRuns(const std::vector<RunParams>& runs) {
  for (const RunParams& run : runs) {
    const nlohmann::json json = run.ToJson();
    auto again = RunParams::FromJson(nlohmann::json::parse(json.dump()));
    if (!again.ok() || again->Hash() != run.Hash()) abort();
    if (PlannedSteps(json.dump()) != run.steps) abort();
  }
}

void Submit(SweepSpec& spec) {
  (void)spec.ImageRefs();
  (void)spec.WeightsRefs();
  absl::Status mapped = spec.MapImages(
      [](const std::string& ref) -> absl::StatusOr<std::string> { return "sha256:" + Sha256Hex(ref); });
  if (!mapped.ok()) abort();  // the function never fails, so neither may the mapping
  mapped = spec.MapWeights([](const std::string& ref) -> absl::StatusOr<std::string> { return "/weights/" + ref; });
  if (!mapped.ok()) abort();

  const uint64_t seed = spec.has_search_seed ? spec.search_seed : 7;
  if (spec.method == "grid") {
    auto runs = spec.Expand();
    if (runs.ok()) {
      if (runs->size() != spec.GridSize() || runs->size() != spec.RunCount()) abort();
      CheckRuns(*runs);
    }
  } else if (spec.method == "random") {
    auto runs = spec.Draw(seed, 0, spec.RunCount());
    if (runs.ok()) {
      if (runs->size() != spec.RunCount()) abort();
      CheckRuns(*runs);
    }
  } else {
    // What a bayes proposal does: a point of the search space, resolved. The
    // corners of the space first, then random points.
    const std::vector<SearchDimension> space = spec.SearchSpace();
    if (space.size() != spec.parameters.size()) abort();
    std::vector<double> low, high;
    for (const SearchDimension& dimension : space) {
      low.push_back(0);
      high.push_back(dimension.choices > 0 ? dimension.choices - 1 : 0.9999999);
    }
    std::vector<RunParams> runs;
    for (const std::vector<double>& point : {low, high}) {
      if (auto run = spec.Resolve(point); run.ok()) runs.push_back(*run);
    }
    SweepRandom random(seed);
    for (int i = 0; i < kBayesPoints; ++i) {
      if (auto run = spec.Resolve(spec.RandomPoint(random)); run.ok()) runs.push_back(*run);
    }
    CheckRuns(runs);
  }
  (void)spec.ObjectivePoint({1, 2, 3, 4, Evaluation{}});
  (void)spec.Objective({1, 2, 3, 4, std::nullopt});
  (void)spec.Warnings();
  (void)SweepSpec::ObjectiveFromJson(spec.ToJson());
  (void)spec.ToJson().dump();
}

}  // namespace
}  // namespace stylesweep

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto spec = stylesweep::ParseSweep(yaml, "fuzz.yaml", stylesweep::SweepLimits{stylesweep::kMaxRuns});
  if (spec.ok()) stylesweep::Submit(*spec);
  return 0;
}
