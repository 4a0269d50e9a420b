#ifndef STYLESWEEP_COMMON_SWEEP_SPEC_H_
#define STYLESWEEP_COMMON_SWEEP_SPEC_H_

// The sweep language: a YAML file in the shape of W&B sweeps.
//
//   name: layers-vs-weight
//   method: grid
//   content: images/cat.png          # fixed settings at the top level...
//   parameters:
//     style: {value: images/starry.jpg}   # ...or under parameters
//     style_weight: {values: [1e-3, 1e-2]}
//     steps: {value: 200}
//
// method: random and bayes draw parameters from distributions
// ({min: 1e-3, max: 1e-1, distribution: log_uniform_values}) up to run_cap
// runs. Grouped options nest under a parameter with its own `parameters:`;
// a nested name N under group G is the run parameter G when N is `name` and
// G is a run parameter (optimizer: {parameters: {name: …}} sets optimizer),
// else G_N when that exists (style: {parameters: {weight: …}} sets
// style_weight), else N (optimizer: {parameters: {learning_rate: …}} sets
// learning_rate). Each run parameter may be set once, wherever it sits.
//
// Parsing validates everything it can without touching the disk and reports
// the first problem as "FILE:LINE:COL: KEY.PATH: what is wrong". Every real
// value, distribution bound and q must be one float32 (the engine's
// precision) holds; see CheckFloat32. Thread-safe (no shared state).

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/evaluation.h"
#include "common/limits.h"
#include "common/run_params.h"
#include "nlohmann/json.hpp"

namespace stylesweep {

// How a random or bayes sweep draws one parameter. kValues is a fixed value
// (one) or a choice among listed values (several: a grid axis, or for
// random/bayes an equally likely choice unless `probabilities` say
// otherwise).
enum class Distribution {
  kValues,            // value / values (distribution: categorical)
  kUniform,           // real in [min, max]
  kIntUniform,        // integer in [min, max], each equally likely
  kLogUniformValues,  // exp(uniform(log min, log max)); min > 0
  kQUniform,          // round(uniform(min, max) / q) * q
};

// One swept (or fixed) run parameter with the values it takes, in file order.
struct ParameterSpec {
  std::string name;
  std::vector<nlohmann::json> values;
  std::vector<int> lines;  // 1-based line of each value in the file (0: unknown)
  Distribution distribution = Distribution::kValues;
  double min = 0, max = 0, q = 1;     // for the distributions other than kValues
  std::vector<double> probabilities;  // kValues under random/bayes; empty: equal
};

// One coordinate of a point of a sweep's search space (see SweepSpec::Resolve):
// `choices` > 0 is a categorical coordinate (an index into the parameter's
// values, drawn with `probabilities`); 0 is a continuous quantile in [0, 1).
struct SearchDimension {
  int choices = 0;
  std::vector<double> probabilities;  // empty: equally likely
};

// A portable random stream. std::mt19937_64's sequence is fixed by the
// standard but std's distributions are not, so the draws that decide which
// runs a sweep makes are computed here: the same seed gives the same runs on
// every platform. Thread-compatible.
class SweepRandom {
 public:
  explicit SweepRandom(uint64_t seed);
  // The stream of draw number `draw` of a sweep seeded with `seed`:
  // independent of every other draw, so a resumed sweep continues where it
  // stopped without replaying earlier draws.
  SweepRandom(uint64_t seed, uint64_t draw);
  uint64_t Next() { return engine_(); }
  double Uniform();  // [0, 1)
  // An index drawn with `probabilities` (empty: equally among n).
  size_t Choice(size_t n, const std::vector<double>& probabilities);

 private:
  std::mt19937_64 engine_;
};

// Early termination of a sweep's runs (see coordinator/scheduler/early_stop.h).
struct EarlyTerminate {
  std::string type;  // "": none; "hyperband" or "median"
  int min_iter = 0;  // first rung, in steps
  int eta = 3;       // rungs at min_iter * eta^k; hyperband keeps the best 1/eta at each
};

// The most runs one sweep may expand to, unless SweepLimits say fewer.
inline constexpr size_t kMaxGridSize = 100000;
// What SweepSpec::GridSize() returns for a grid too large to count.
inline constexpr size_t kGridSizeOverflow = std::numeric_limits<size_t>::max();

// Limits the sweep language enforces that a deployment may tighten.
struct SweepLimits {
  size_t max_runs = kMaxGridSize;  // the most runs one sweep may create (grid size or run_cap)
};

struct SweepSpec {
  std::string source;       // the file it came from, for messages
  std::string name;
  std::string description;
  std::string method = "grid";  // grid, random or bayes
  int max_attempts = 3;
  // What the search optimises and early termination ranks runs by: one
  // metric, an evaluation metric (eval/*, common/evaluation.h, comparable
  // across runs) or one of the run's own losses (loss/total, loss/style,
  // loss/content, loss/tv, weighted by that run's own weights), ...
  std::string metric = "eval/score";
  std::string goal = "minimize";  // or maximize; default: the metric's natural direction
  // ... or, when not empty, 2 to 4 distinct eval/* metrics, each ranked in
  // its natural direction (maximize for eval/ssim, minimize otherwise), and
  // `metric` and `goal` mean nothing.
  std::vector<std::string> pareto;
  bool multi_objective() const { return !pareto.empty(); }
  int run_cap = 0;                    // most runs to create; 0: the whole grid (required for random/bayes)
  int max_concurrent = 0;             // most runs RUNNING at once; 0: no limit
  bool has_search_seed = false;       // search_seed set in the file
  uint64_t search_seed = 0;
  EarlyTerminate early_terminate;
  // Every run parameter that is set, each with one value (fixed) or several
  // (swept), in the order the file names them; top-level keys first.
  std::vector<ParameterSpec> parameters;

  // The number of runs Expand() produces (grid sweeps), exactly, or
  // kGridSizeOverflow when the product does not fit in a size_t.
  size_t GridSize() const;
  // "12 points", or "more than 18446744073709551614 points", for messages.
  std::string DescribeGridSize() const;
  // How many runs the sweep creates: the grid's size, or run_cap.
  size_t RunCount() const;

  // One coordinate per parameter, in `parameters` order.
  std::vector<SearchDimension> SearchSpace() const;
  // The run at `point` (one coordinate per parameter, as SearchSpace says),
  // validated. Continuous quantiles map through the parameter's distribution.
  absl::StatusOr<RunParams> Resolve(const std::vector<double>& point) const;
  // A point drawn from every parameter's distribution.
  std::vector<double> RandomPoint(SweepRandom& random) const;
  // Random sweeps: the first `count` draws of the generator seeded with
  // `seed` (draw i uses SweepRandom(seed, i)).
  absl::StatusOr<std::vector<RunParams>> Draw(uint64_t seed, size_t first, size_t count) const;
  // One run's values as search and early termination compare them.
  struct RunValues {
    double total = 0, style = 0, content = 0, tv = 0;  // the run's own losses
    std::optional<Evaluation> eval;                    // none: not evaluated (at that step)
  };
  // The point the search minimises: one coordinate per objective (the
  // metric, or each pareto metric, in order), each negated when higher is
  // better (goal maximize; eval/ssim in a pareto list). nullopt when an
  // objective is an eval metric and values.eval is empty.
  std::optional<std::vector<double>> ObjectivePoint(const RunValues& values) const;
  // The single objective as a scalar (ObjectivePoint's only coordinate);
  // nullopt as above, or when multi_objective().
  std::optional<double> Objective(const RunValues& values) const;
  // The objective (metric, goal and pareto; every other field default) of a
  // stored spec (ToJson's output). Tolerant of older JSON: a metric without
  // a goal takes its natural direction, and a spec without a metric, or with
  // a name this version does not know, ranks by loss/total, the only
  // objective before metrics could be chosen.
  static SweepSpec ObjectiveFromJson(const nlohmann::json& spec_json);

  // Advice about the sweep that does not stop it, one line each: a loss/*
  // metric over runs that vary their weights, layers, sizes or optimiser
  // (their losses are not measured alike). Empty when there is none.
  std::vector<std::string> Warnings() const;

  // The cartesian product of every parameter's values, the first parameter
  // varying slowest, each run validated. Image references are left as they
  // are (see MapImages).
  absl::StatusOr<std::vector<RunParams>> Expand() const;

  struct FileRef {
    std::string ref;   // as written (or as mapped)
    std::string key;   // "content", "style" or "weights"
    int line = 0;      // where the file names it first
  };
  // Every distinct image reference (content and style values), in file order.
  std::vector<FileRef> ImageRefs() const;
  // Every distinct weights file the sweep names, in file order.
  std::vector<FileRef> WeightsRefs() const;

  // Replace every image (weights) reference by fn(reference); the first
  // error stops and is returned.
  absl::Status MapImages(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn);
  absl::Status MapWeights(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn);

  nlohmann::json ToJson() const;
};

// OK when a sweep file of `bytes` bytes is within kMaxSweepYamlBytes, else
// an error naming `source` and the limit.
absl::Status CheckSweepYamlSize(const std::string& source, uint64_t bytes);

// Parses sweep YAML text. `source` names the file in error messages. Text
// over kMaxSweepYamlBytes is refused before the YAML parser sees it, and
// text that is not UTF-8 with the line and column of its first bad byte.
absl::StatusOr<SweepSpec> ParseSweep(const std::string& yaml_text, const std::string& source,
                                     const SweepLimits& limits = {});

// Reads and parses a sweep file (refusing one over kMaxSweepYamlBytes
// before reading it), then rewrites relative image and weights
// paths to be relative to the file's directory (absolute on return).
absl::StatusOr<SweepSpec> LoadSweepFile(const std::string& path);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_SWEEP_SPEC_H_
