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
// Parsing validates everything it can without touching the disk and reports
// the first problem as "FILE:LINE:COL: KEY.PATH: what is wrong". Thread-safe
// (no shared state).

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/run_params.h"
#include "nlohmann/json.hpp"

namespace stylesweep {

// One swept (or fixed) run parameter with the values it takes, in file order.
struct ParameterSpec {
  std::string name;
  std::vector<nlohmann::json> values;
  std::vector<int> lines;  // 1-based line of each value in the file (0: unknown)
};

struct SweepSpec {
  std::string source;       // the file it came from, for messages
  std::string name;
  std::string description;
  std::string method = "grid";
  int max_attempts = 3;
  // Every run parameter that is set, each with one value (fixed) or several
  // (swept), in the order the file names them; top-level keys first.
  std::vector<ParameterSpec> parameters;

  // The number of runs Expand() produces.
  size_t GridSize() const;

  // The cartesian product of every parameter's values, the first parameter
  // varying slowest, each run validated. Image references are left as they
  // are (see MapImages).
  absl::StatusOr<std::vector<RunParams>> Expand() const;

  struct ImageRef {
    std::string ref;   // as written (or as mapped)
    std::string key;   // "content" or "style"
    int line = 0;      // where the file names it first
  };
  // Every distinct image reference (content and style values), in file order.
  std::vector<ImageRef> ImageRefs() const;

  // Replaces every image reference by fn(reference); the first error stops
  // and is returned.
  absl::Status MapImages(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn);

  nlohmann::json ToJson() const;
};

// Parses sweep YAML text. `source` names the file in error messages.
absl::StatusOr<SweepSpec> ParseSweep(const std::string& yaml_text, const std::string& source);

// Reads and parses a sweep file, then rewrites relative image paths to be
// relative to the file's directory (absolute on return).
absl::StatusOr<SweepSpec> LoadSweepFile(const std::string& path);

// The most runs one sweep may expand to.
inline constexpr size_t kMaxGridSize = 100000;

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_SWEEP_SPEC_H_
