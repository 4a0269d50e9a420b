#include "common/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/text.h"

namespace stylesweep {
namespace {

constexpr const char* kSweepKeys[] = {"name",    "description",    "method",         "metric",
                                      "parameters", "max_attempts", "run_cap",        "max_concurrent",
                                      "early_terminate", "search_seed"};
constexpr const char* kParameterKeys[] = {"value", "values", "distribution", "min", "max", "q", "probabilities",
                                          "parameters"};
constexpr const char* kLossMetricNames[] = {"loss/total", "loss/style", "loss/content", "loss/tv"};
// The most metrics a Pareto front may rank by: beyond 4, almost every run is
// on the front and the ranking says little.
constexpr size_t kMaxParetoMetrics = 4;

bool IsLossMetric(const std::string& name) {
  return std::find(std::begin(kLossMetricNames), std::end(kLossMetricNames), name) != std::end(kLossMetricNames);
}

// Every metric a sweep may name: the evaluation metrics first (eval/score,
// the default, leads), then the run's own losses.
std::vector<std::string> MetricNames() {
  std::vector<std::string> names = EvalMetricNames();
  names.insert(names.end(), std::begin(kLossMetricNames), std::end(kLossMetricNames));
  return names;
}

// The direction a metric is ranked in when the sweep does not say.
const char* NaturalGoal(const std::string& metric) {
  return EvalHigherIsBetter(metric) ? "maximize" : "minimize";
}

// The run parameters whose variation makes the runs' own losses measure
// different things (or the same thing at different scales).
constexpr const char* kLossScaleKeys[] = {"style_weight",        "content_weight", "tv_weight",
                                          "style_layers",        "content_layers", "style_layer_weights",
                                          "image_size",          "multires_sizes", "multires_steps",
                                          "style_blend_weights", "optimizer"};

const ParamDef* FindRunKey(const std::string& name) {
  for (const ParamDef& def : RunParamDefs()) {
    if (name == def.name) return &def;
  }
  return nullptr;
}

const char* KindName(ParamKind kind) {
  switch (kind) {
    case ParamKind::kString:
    case ParamKind::kImage:
      return "a string";
    case ParamKind::kImageList:
      return "an image path or a list of them";
    case ParamKind::kWeights:
      return "a weights file path";
    case ParamKind::kStringList:
      return "a list of layer names";
    case ParamKind::kNumber:
      return "a number";
    case ParamKind::kNumberList:
      return "a list of numbers";
    case ParamKind::kInt:
      return "an integer";
    case ParamKind::kIntList:
      return "a list of integers";
  }
  return "a value";
}

bool IsImageKind(ParamKind kind) { return kind == ParamKind::kImage || kind == ParamKind::kImageList; }
// Files the sweep names: images (sent with the sweep) and weights (named by
// path on the agents' machines).
bool IsFileKind(ParamKind kind) { return IsImageKind(kind) || kind == ParamKind::kWeights; }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined value";
  }
}

// The known word the user most likely meant: one that starts with what was
// written (a truncated word), else the closest by edit distance; "" if none.
std::string Suggest(const std::string& word, const std::vector<std::string>& known) {
  if (word.size() >= 3) {
    for (const std::string& k : known) {
      if (k.size() > word.size() && k.compare(0, word.size(), word) == 0) return k;
    }
  }
  return ClosestMatch(word, known);
}

// A node that tests false, for keys not (yet) seen: a default-constructed
// YAML::Node is a defined null and tests true.
YAML::Node Absent() { return YAML::Node(YAML::NodeType::Undefined); }

// A number too large or too small for a double (1e400, 1e-400): yaml-cpp
// refuses the first as not a number and silently reads the second as 0.
bool BeyondDouble(const YAML::Node& node) {
  if (!node.IsScalar() || node.Tag() == "!" || node.Scalar().empty()) return false;
  const std::string& text = node.Scalar();
  char* end = nullptr;
  errno = 0;
  std::strtod(text.c_str(), &end);
  return errno == ERANGE && end == text.c_str() + text.size();
}

// Digits with an optional sign: an integer, whether or not it fits.
bool IntegerText(const YAML::Node& node) {
  if (!node.IsScalar()) return false;
  const std::string& text = node.Scalar();
  const size_t first = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  return text.size() > first && text.find_first_not_of("0123456789", first) == std::string::npos;
}

// The line (1-based) where the text first nests deeper than
// kMaxSweepYamlDepth, or 0. Nesting is counted as the YAML parser will
// recurse: block levels below the top (each deeper indentation, and each
// "- " or "? " entry that opens another on the same line, as in "- - - 1")
// plus flow collections ('[' '{') inside them. Brackets inside quoted
// strings and comments do not count, nor do brackets inside a plain scalar
// (`a[1].png`): outside a flow collection one opens only where a node starts;
// nor does the text of a block scalar ('|' or '>').
int FirstTooDeepLine(const std::string& text) {
  int flow = 0, line = 1;
  std::vector<size_t> block;       // the columns of the open block nodes
  std::optional<size_t> literal;   // in a block scalar: the indentation of the line that began it
  size_t line_start = 0, indent = 0;
  char prev = '\n';  // the last character that is not a space, on this line
  auto block_depth = [&block] { return block.empty() ? 0 : static_cast<int>(block.size()) - 1; };
  auto is_space = [&text](size_t k) { return k >= text.size() || text[k] == ' ' || text[k] == '\n' || text[k] == '\r'; };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      prev = '\n';
      line_start = i + 1;
      continue;
    }
    if (i == line_start && flow == 0) {
      size_t j = i;
      while (j < text.size() && text[j] == ' ') ++j;
      const bool blank = j >= text.size() || text[j] == '\n' || text[j] == '\r' || text[j] == '#';
      if (!blank || literal) {
        if (literal && (blank || j - i > *literal)) {
          // A line of a block scalar: text, whatever it holds.
          while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
          continue;
        }
        literal.reset();
        indent = j - i;
        while (!block.empty() && block.back() >= indent) block.pop_back();
        block.push_back(indent);
        // "- - key: 1" opens a level at each entry.
        while (j < text.size() && (text[j] == '-' || text[j] == '?') && is_space(j + 1)) {
          ++j;
          while (j < text.size() && text[j] == ' ') ++j;
          if (j >= text.size() || text[j] == '\n' || text[j] == '\r' || text[j] == '#') break;
          block.push_back(j - i);
          prev = '-';
        }
        if (block_depth() > kMaxSweepYamlDepth) return line;
        if (j > i) {
          i = j - 1;
          continue;
        }
      }
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    const bool node_start = prev == '\n' || prev == ':' || prev == '-' || prev == '?' ||
                            (flow > 0 && (prev == ',' || prev == '[' || prev == '{'));
    const bool after_space = i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n';
    if (c == '#' && after_space) {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
      continue;
    }
    if ((c == '\'' || c == '"') && node_start) {
      for (++i; i < text.size(); ++i) {
        if (text[i] == '\n') {
          ++line;
          line_start = i + 1;  // inside the string: not a line of the block structure
        }
        if (c == '"' && text[i] == '\\') {
          if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
          ++i;
        } else if (text[i] == c) {
          if (c == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
            ++i;  // '' is a quote inside a single-quoted string
          } else {
            break;
          }
        }
      }
      prev = c;
      continue;
    }
    if ((c == '|' || c == '>') && flow == 0 && node_start) {
      literal = indent;  // the lines after this one, indented further, are its text
    } else if ((c == '[' || c == '{') && (flow > 0 || node_start)) {
      if (++flow + block_depth() > kMaxSweepYamlDepth) return line;
    } else if ((c == ']' || c == '}') && flow > 0) {
      --flow;
    }
    prev = c;
  }
  return 0;
}

class Parser {
 public:
  Parser(std::string source, SweepLimits limits) : source_(std::move(source)), limits_(limits) {}

  absl::StatusOr<SweepSpec> Parse(const std::string& text) {
    // The spec is stored and sent as JSON and protobuf, whose strings must
    // be UTF-8 (yaml-cpp passes other bytes through, and its escapes always
    // make UTF-8).
    if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
      const size_t newline = text.rfind('\n', bad);  // text[bad] is not one
      const size_t column = newline == std::string::npos ? bad : bad - newline - 1;
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[bad]));
      return absl::InvalidArgumentError(absl::StrCat(source_, ":", std::count(text.begin(), text.begin() + bad, '\n') + 1,
                                                     ":", column + 1, ": not UTF-8 text (byte ", byte,
                                                     "); save the sweep file as UTF-8"));
    }
    // yaml-cpp parses nested collections recursively; refuse deep nesting
    // with a clear message before it sees the text.
    if (const int line = FirstTooDeepLine(text); line != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ":", line, ": nested deeper than ", kMaxSweepYamlDepth, " levels"));
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                                     ": not valid YAML: ", e.msg));
    }
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": a sweep must be a YAML mapping with 'parameters:' and settings"));
    }
    SweepSpec spec;
    spec.source = source_;
    spec.name = std::filesystem::path(source_).stem().string();
    std::set<std::string> seen;
    YAML::Node parameters;
    bool has_parameters = false;
    YAML::Node run_cap_node = Absent();
    // The method decides which parameter forms are allowed, wherever it sits.
    YAML::Node method_node = Absent();
    for (const auto& entry : root) {
      if (entry.first.Scalar() == "method") method_node = entry.second;
    }
    if (method_node) {
      if (!method_node.IsScalar()) {
        return Error(method_node, "method", absl::StrCat("expected a string, got ", Describe(method_node)));
      }
      const std::string m = method_node.Scalar();
      if (m != "grid" && m != "random" && m != "bayes") {
        return Error(method_node, "method", absl::StrCat("unknown method '", m, "'; expected grid, random or bayes"));
      }
      spec.method = m;
    }
    method_ = spec.method;

    for (const auto& entry : root) {
      const std::string key = entry.first.Scalar();
      const YAML::Node& value = entry.second;
      if (key == "parameters") {
        parameters = value;
        has_parameters = true;
      } else if (key == "name" || key == "description" || key == "method") {
        if (!value.IsScalar()) return Error(value, key, absl::StrCat("expected a string, got ", Describe(value)));
        std::string s = value.Scalar();
        if (key == "name") {
          if (s.empty()) return Error(value, key, "must not be empty");
          spec.name = s;
        } else if (key == "description") {
          spec.description = s;
        }  // method: read before this loop
      } else if (key == "max_attempts") {
        long long n = 0;
        if (!AsInt(value, n) || n < 1 || n > 100) {
          return Error(value, key, absl::StrCat("expected an integer from 1 to 100, got ", Describe(value)));
        }
        spec.max_attempts = static_cast<int>(n);
      } else if (key == "run_cap") {
        long long n = 0;
        if (!AsInt(value, n) || n < 1) return Error(value, key, absl::StrCat("expected a positive integer, got ", Describe(value)));
        if (static_cast<unsigned long long>(n) > limits_.max_runs) {
          return Error(value, key, absl::StrCat("run_cap ", n, " is more than the limit of ", limits_.max_runs));
        }
        spec.run_cap = static_cast<int>(n);
        run_cap_node = value;
      } else if (key == "max_concurrent") {
        long long n = 0;
        if (!AsInt(value, n) || n < 1 || n > 1000000) {
          return Error(value, key, absl::StrCat("expected a positive integer, got ", Describe(value)));
        }
        spec.max_concurrent = static_cast<int>(n);
      } else if (key == "search_seed") {
        long long n = 0;
        if (!AsInt(value, n) || n < 0) {
          return Error(value, key, absl::StrCat("expected an integer >= 0, got ", Describe(value)));
        }
        spec.has_search_seed = true;
        spec.search_seed = static_cast<uint64_t>(n);
      } else if (key == "metric") {
        if (absl::Status s = ParseMetric(spec, value); !s.ok()) return s;
      } else if (key == "early_terminate") {
        if (absl::Status s = ParseEarlyTerminate(spec, value); !s.ok()) return s;
      } else if (const ParamDef* def = FindRunKey(key)) {
        if (absl::Status s = AddParameter(spec, seen, *def, entry.first, value, key, /*top_level=*/true); !s.ok()) {
          return s;
        }
      } else {
        return UnknownKey(entry.first, key, /*top_level=*/true);
      }
    }

    // Without `name:` the file's name names the sweep, and that name goes
    // into JSON and protocol messages, which hold only UTF-8.
    if (FirstInvalidUtf8(spec.name) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": the sweep has no 'name:', and its file name is not UTF-8 text, so it cannot name the sweep: "
                   "add a name: line or rename the file"));
    }

    if (has_parameters) {
      if (!parameters.IsMap()) {
        return Error(parameters, "parameters",
                     absl::StrCat("expected a mapping of parameter names, got ", Describe(parameters)));
      }
      if (absl::Status s = AddParameters(spec, seen, parameters, "parameters", ""); !s.ok()) return s;
    }

    for (const char* required : {"content", "style"}) {
      if (seen.count(required) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(source_, ": '", required,
                                                       "' is required (an image path, at the top level or under "
                                                       "parameters)"));
      }
    }
    if (spec.method == "grid") {
      if (spec.GridSize() > limits_.max_runs) {
        return absl::InvalidArgumentError(absl::StrCat(source_, ": the grid has ", spec.DescribeGridSize(),
                                                       ", more than the limit of ", limits_.max_runs));
      }
      if (spec.run_cap > 0 && spec.GridSize() > static_cast<size_t>(spec.run_cap)) {
        return Error(run_cap_node, "run_cap",
                     absl::StrCat("the grid has ", spec.DescribeGridSize(), ", more than run_cap ", spec.run_cap,
                                  "; raise run_cap or use method: random"));
      }
      // Rules between parameters (blend weights per style image) hold per run.
      if (auto runs = spec.Expand(); !runs.ok()) return runs.status();
      return spec;
    }
    if (spec.run_cap == 0) {
      return Error(method_node, "method",
                   absl::StrCat("method: ", spec.method, " needs run_cap (how many runs to create at most)"));
    }
    // The rules between parameters only involve listed values (style images
    // and their blend weights), so checking every combination of listed
    // values with each distribution at its minimum covers every draw.
    SweepSpec corners = spec;
    for (ParameterSpec& p : corners.parameters) {
      if (p.distribution == Distribution::kValues) continue;
      const ParamDef* def = FindRunKey(p.name);
      p.values = {def->kind == ParamKind::kInt ? nlohmann::json(static_cast<long long>(p.min)) : nlohmann::json(p.min)};
    }
    if (corners.GridSize() <= limits_.max_runs) {
      if (auto runs = corners.Expand(); !runs.ok()) return runs.status();
    }
    return spec;
  }

 private:
  absl::Status Error(const YAML::Node& node, const std::string& path, const std::string& message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(source_, ": ", path, ": ", message));
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", mark.line + 1, ":", mark.column + 1, ": ", path, ": ", message));
  }

  absl::Status UnknownKey(const YAML::Node& key_node, const std::string& path, bool top_level) const {
    std::vector<std::string> known;
    for (const ParamDef& def : RunParamDefs()) known.emplace_back(def.name);
    if (top_level) {
      for (const char* k : kSweepKeys) known.emplace_back(k);
    }
    std::string message = "unknown key";
    const std::string close = ClosestMatch(key_node.Scalar(), known);
    if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
    return Error(key_node, path, message);
  }

  static bool AsInt(const YAML::Node& node, long long& out) {
    if (!node.IsScalar() || node.Tag() == "!") return false;
    try {
      out = node.as<long long>();
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  }

  // Converts one value of a run parameter to JSON, checking its type.
  absl::StatusOr<nlohmann::json> Convert(const ParamDef& def, const YAML::Node& node, const std::string& path) const {
    auto wrong = [&] { return Error(node, path, absl::StrCat("expected ", KindName(def.kind), ", got ", Describe(node))); };
    auto integer = [&](const YAML::Node& n, const std::string& npath, long long& out) -> absl::Status {
      if (AsInt(n, out)) return absl::OkStatus();
      if (IntegerText(n)) return Error(n, npath, absl::StrCat(def.name, " must be an integer in range, got ", n.Scalar()));
      return wrong();
    };
    switch (def.kind) {
      case ParamKind::kString:
      case ParamKind::kImage:
      case ParamKind::kWeights:
        if (!node.IsScalar() || node.Scalar().empty()) return wrong();
        return nlohmann::json(node.Scalar());
      case ParamKind::kImageList:
      case ParamKind::kStringList: {
        nlohmann::json list = nlohmann::json::array();
        if (node.IsScalar()) {
          list.push_back(node.Scalar());
        } else if (node.IsSequence() && node.size() > 0) {
          for (const auto& item : node) {
            if (!item.IsScalar() || item.Scalar().empty()) return wrong();
            list.push_back(item.Scalar());
          }
        } else {
          return wrong();
        }
        return list;
      }
      case ParamKind::kNumber: {
        auto value = ReadReal(node, path, def.name);
        if (!value.ok()) return value.status();
        if (!value->has_value()) return wrong();
        return nlohmann::json(**value);
      }
      case ParamKind::kNumberList: {
        nlohmann::json list = nlohmann::json::array();
        if (!node.IsSequence()) return wrong();
        for (size_t i = 0; i < node.size(); ++i) {
          auto value = ReadReal(node[i], absl::StrCat(path, "[", i, "]"), def.name);
          if (!value.ok()) return value.status();
          if (!value->has_value()) return wrong();
          list.push_back(**value);
        }
        return list;
      }
      case ParamKind::kInt: {
        long long n = 0;
        if (absl::Status s = integer(node, path, n); !s.ok()) return s;
        return nlohmann::json(n);
      }
      case ParamKind::kIntList: {
        nlohmann::json list = nlohmann::json::array();
        if (!node.IsSequence()) return wrong();
        for (size_t i = 0; i < node.size(); ++i) {
          long long n = 0;
          if (absl::Status s = integer(node[i], absl::StrCat(path, "[", i, "]"), n); !s.ok()) return s;
          list.push_back(n);
        }
        return list;
      }
    }
    return wrong();
  }

  // Checks one value against the run parameter's own rules (ranges, layer
  // names) by validating a run that differs from a valid one in that key only.
  absl::Status CheckValue(const ParamDef& def, const YAML::Node& node, const std::string& path,
                          nlohmann::json& value) const {
    if (IsFileKind(def.kind)) return absl::OkStatus();  // resolved and read later
    RunParams base;
    base.content = "content";
    base.style = {"style"};
    nlohmann::json probe = base.ToJson();
    probe[def.name] = value;
    auto parsed = RunParams::FromJson(probe, /*check_relations=*/false);
    if (!parsed.ok()) {
      std::string message(parsed.status().message());
      const std::string own_prefix = absl::StrCat(def.name, ": ");
      if (message.rfind(own_prefix, 0) == 0) message.erase(0, own_prefix.size());
      return Error(node, path, message);
    }
    value = parsed->ToJson()[def.name];  // canonical form (layer names)
    return absl::OkStatus();
  }

  // An unknown key, with the closest of `known` as a suggestion.
  absl::Status UnknownAmong(const YAML::Node& key_node, const std::string& path,
                            const std::vector<std::string>& known) const {
    std::string message = "unknown key";
    const std::string close = Suggest(key_node.Scalar(), known);
    if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
    return Error(key_node, path, message);
  }

  absl::Status ParseMetric(SweepSpec& spec, const YAML::Node& node) const {
    if (!node.IsMap()) {
      return Error(node, "metric",
                   absl::StrCat("expected a mapping {name: eval/score, goal: minimize} or {pareto: [eval/style, "
                                "eval/content]}, got ",
                                Describe(node)));
    }
    YAML::Node name_key = Absent(), goal_key = Absent(), pareto_key = Absent();
    bool goal_set = false;
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string path = absl::StrCat("metric.", key);
      const YAML::Node& value = entry.second;
      if (key == "name") {
        name_key = entry.first;
        const std::vector<std::string> names = MetricNames();
        if (!value.IsScalar() || std::find(names.begin(), names.end(), value.Scalar()) == names.end()) {
          return UnknownMetric(value, path, names);
        }
        spec.metric = value.Scalar();
      } else if (key == "goal") {
        goal_key = entry.first;
        if (!value.IsScalar() || (value.Scalar() != "minimize" && value.Scalar() != "maximize")) {
          return Error(value, path, absl::StrCat("expected minimize or maximize, got ", Describe(value)));
        }
        spec.goal = value.Scalar();
        goal_set = true;
      } else if (key == "pareto") {
        pareto_key = entry.first;
        if (absl::Status s = ParsePareto(spec, value, path); !s.ok()) return s;
      } else {
        return UnknownAmong(entry.first, path, {"name", "goal", "pareto"});
      }
    }
    if (pareto_key) {
      if (name_key) {
        return Error(name_key, "metric.name",
                     "cannot be combined with 'pareto': a sweep ranks runs by one metric (name) or by the Pareto "
                     "front of several (pareto); use one");
      }
      if (goal_key) {
        return Error(goal_key, "metric.goal",
                     "cannot be combined with 'pareto': each pareto metric is ranked in its natural direction "
                     "(maximize for eval/ssim, minimize otherwise)");
      }
      return absl::OkStatus();
    }
    if (!goal_set) spec.goal = NaturalGoal(spec.metric);
    return absl::OkStatus();
  }

  absl::Status UnknownMetric(const YAML::Node& value, const std::string& path,
                             const std::vector<std::string>& names) const {
    std::string message =
        absl::StrCat("unknown metric ", Describe(value), "; expected one of ", absl::StrJoin(names, ", "));
    if (value.IsScalar()) {
      const std::string close = Suggest(value.Scalar(), names);
      if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
    }
    return Error(value, path, message);
  }

  // metric.pareto: 2 to kMaxParetoMetrics distinct evaluation metrics.
  absl::Status ParsePareto(SweepSpec& spec, const YAML::Node& node, const std::string& path) const {
    if (!node.IsSequence()) {
      return Error(node, path, absl::StrCat("expected a list of 2 to ", kMaxParetoMetrics, " eval/* metrics, got ",
                                            Describe(node)));
    }
    if (node.size() < 2 || node.size() > kMaxParetoMetrics) {
      std::string message = absl::StrCat("lists ", node.size(), node.size() == 1 ? " metric" : " metrics",
                                         "; a Pareto front ranks by 2 to ", kMaxParetoMetrics);
      if (node.size() == 1 && node[0].IsScalar()) {
        absl::StrAppend(&message, " (for one metric, write {name: ", node[0].Scalar(), "})");
      }
      return Error(node, path, message);
    }
    const std::vector<std::string> names = EvalMetricNames();
    std::vector<std::string> pareto;
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node& item = node[i];
      const std::string item_path = absl::StrCat(path, "[", i, "]");
      if (item.IsScalar() && IsLossMetric(item.Scalar())) {
        return Error(item, item_path,
                     absl::StrCat(item.Scalar(), " cannot be a pareto metric: loss/* values are weighted by each "
                                  "run's own weights, so they are not comparable across runs; use eval/* metrics"));
      }
      if (!item.IsScalar() || !IsEvalMetric(item.Scalar())) return UnknownMetric(item, item_path, names);
      if (std::find(pareto.begin(), pareto.end(), item.Scalar()) != pareto.end()) {
        return Error(item, item_path, absl::StrCat(item.Scalar(), " is listed twice"));
      }
      pareto.push_back(item.Scalar());
    }
    spec.pareto = std::move(pareto);
    return absl::OkStatus();
  }

  absl::Status ParseEarlyTerminate(SweepSpec& spec, const YAML::Node& node) const {
    if (!node.IsMap()) {
      return Error(node, "early_terminate",
                   absl::StrCat("expected a mapping {type: hyperband, min_iter: N, eta: 3}, got ", Describe(node)));
    }
    EarlyTerminate et;
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string path = absl::StrCat("early_terminate.", key);
      const YAML::Node& value = entry.second;
      long long n = 0;
      if (key == "type") {
        if (!value.IsScalar() || (value.Scalar() != "hyperband" && value.Scalar() != "median")) {
          return Error(value, path, absl::StrCat("expected hyperband or median, got ", Describe(value)));
        }
        et.type = value.Scalar();
      } else if (key == "min_iter") {
        if (!AsInt(value, n) || n < 1 || n > std::numeric_limits<int>::max()) {
          return Error(value, path, absl::StrCat("expected a positive number of steps up to ",
                                                 std::numeric_limits<int>::max(), ", got ", Describe(value)));
        }
        et.min_iter = static_cast<int>(n);
      } else if (key == "eta") {
        if (!AsInt(value, n) || n < 2 || n > 100) {
          return Error(value, path, absl::StrCat("expected an integer from 2 to 100, got ", Describe(value)));
        }
        et.eta = static_cast<int>(n);
      } else {
        return UnknownAmong(entry.first, path, {"type", "min_iter", "eta"});
      }
    }
    if (et.type.empty()) return Error(node, "early_terminate", "expected 'type' (hyperband or median)");
    if (et.min_iter == 0) {
      return Error(node, "early_terminate", "expected 'min_iter' (the first step at which runs are compared)");
    }
    spec.early_terminate = et;
    return absl::OkStatus();
  }

  // The entries of a `parameters:` mapping at `path`; `group` is the name of
  // the enclosing grouped option ("" at the top).
  absl::Status AddParameters(SweepSpec& spec, std::set<std::string>& seen, const YAML::Node& node,
                             const std::string& path, const std::string& group) {
    // Groups nest as deeply as the text does, which FirstTooDeepLine bounds,
    // except through an alias: `g: &g {parameters: {g: *g}}` is a group
    // inside itself, for ever.
    if (group_depth_ >= kMaxSweepYamlDepth) {
      constexpr size_t kShown = 60;
      return Error(node, path.size() > kShown ? absl::StrCat(path.substr(0, kShown), "...") : path,
                   absl::StrCat("groups nested deeper than ", kMaxSweepYamlDepth,
                                " levels (does an alias (*name) refer to a group that holds it?)"));
    }
    ++group_depth_;
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{group_depth_};
    if (!node.IsMap()) {
      return Error(node, path, absl::StrCat("expected a mapping of parameter names, got ", Describe(node)));
    }
    if (node.size() == 0) return Error(node, path, "must name at least one parameter");
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string sub = absl::StrCat(path, ".", key);
      if (entry.second.IsMap() && entry.second["parameters"]) {
        for (const auto& inner : entry.second) {
          if (inner.first.Scalar() != "parameters") {
            return Error(inner.first, absl::StrCat(sub, ".", inner.first.Scalar()),
                         "a group of options takes only 'parameters'");
          }
        }
        if (absl::Status s = AddParameters(spec, seen, entry.second["parameters"], absl::StrCat(sub, ".parameters"),
                                           key);
            !s.ok()) {
          return s;
        }
        continue;
      }
      const ParamDef* def = nullptr;
      if (!group.empty()) {
        // W&B's shape: `optimizer: {parameters: {name: adam, ...}}` names the
        // group's own choice.
        def = key == "name" ? FindRunKey(group) : FindRunKey(absl::StrCat(group, "_", key));
      }
      if (def == nullptr) def = FindRunKey(key);
      if (def == nullptr) {
        if (group.empty()) return UnknownKey(entry.first, sub, /*top_level=*/false);
        std::vector<std::string> known;
        for (const ParamDef& d : RunParamDefs()) known.emplace_back(d.name);
        const std::string prefix = absl::StrCat(group, "_");
        for (const ParamDef& d : RunParamDefs()) {
          if (std::string(d.name).rfind(prefix, 0) == 0) known.push_back(std::string(d.name).substr(prefix.size()));
        }
        return UnknownAmong(entry.first, sub, known);
      }
      if (absl::Status s = AddParameter(spec, seen, *def, entry.first, entry.second, sub, /*top_level=*/false);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  static bool AsNumber(const YAML::Node& n, double& out) {
    if (!n.IsScalar() || n.Tag() == "!") return false;
    try {
      out = n.as<double>();
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  }

  // A real value the engine can use: nullopt when `n` is not a number (the
  // caller says what it expected), an error naming `key` when it is one that
  // float32 cannot hold (.inf, .nan, 1e300, 1e-50).
  absl::StatusOr<std::optional<double>> ReadReal(const YAML::Node& n, const std::string& path,
                                                 absl::string_view key) const {
    if (BeyondDouble(n)) {
      return Error(n, path, absl::StrCat(key, " must be 0 or a magnitude from ", FLT_TRUE_MIN, " to ", FLT_MAX,
                                         " (the float32 range), got ", n.Scalar()));
    }
    double value = 0;
    if (!AsNumber(n, value)) return std::optional<double>();
    if (absl::Status s = CheckFloat32(key, value); !s.ok()) return Error(n, path, std::string(s.message()));
    return std::optional<double>(value);
  }

  absl::Status AddParameter(SweepSpec& spec, std::set<std::string>& seen, const ParamDef& def,
                            const YAML::Node& key_node, const YAML::Node& node, const std::string& path,
                            bool top_level) {
    if (!seen.insert(def.name).second) {
      return Error(key_node, path, "is set twice (at the top level and under parameters)");
    }
    // Evaluation metrics compare runs only when every run is measured at the
    // same size.
    const bool one_value_only = std::string(def.name) == "eval_size";
    auto one_value = [&](const YAML::Node& at, const std::string& at_path) {
      return Error(at, at_path,
                   "eval_size must be one value for the whole sweep: runs are compared at one evaluation size");
    };
    if (one_value_only && node.IsSequence()) return one_value(node, path);
    ParameterSpec param;
    param.name = def.name;
    auto add = [&](const YAML::Node& value_node, const std::string& value_path) -> absl::Status {
      auto value = Convert(def, value_node, value_path);
      if (!value.ok()) return value.status();
      if (absl::Status s = CheckValue(def, value_node, value_path, *value); !s.ok()) return s;
      for (const auto& existing : param.values) {
        if (existing == *value) return Error(value_node, value_path, absl::StrCat("duplicate value ", value->dump()));
      }
      param.values.push_back(std::move(*value));
      param.lines.push_back(value_node.Mark().is_null() ? 0 : value_node.Mark().line + 1);
      return absl::OkStatus();
    };

    if (!node.IsMap()) {
      if (!top_level) {
        return Error(node, path, "expected a mapping with 'value' or 'values' (e.g. {values: [1, 2]})");
      }
      if (absl::Status s = add(node, path); !s.ok()) return s;
      spec.parameters.push_back(std::move(param));
      return absl::OkStatus();
    }
    if (node["value"] && node["values"]) return Error(key_node, path, "has both 'value' and 'values'; use one");
    YAML::Node value_node = Absent(), values_node = Absent(), distribution_node = Absent(), min_node = Absent(),
               max_node = Absent(), q_node = Absent(), probabilities_node = Absent();
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string sub = absl::StrCat(path, ".", key);
      if (key == "value") {
        value_node = entry.second;
      } else if (key == "values") {
        values_node = entry.second;
      } else if (key == "distribution" || key == "min" || key == "max" || key == "q" || key == "probabilities") {
        if (method_ == "grid") {
          return Error(entry.first, sub,
                       "grid sweeps take 'value' or 'values'; distributions need method: random or bayes");
        }
        if (key == "distribution") distribution_node = entry.second;
        if (key == "min") min_node = entry.second;
        if (key == "max") max_node = entry.second;
        if (key == "q") q_node = entry.second;
        if (key == "probabilities") probabilities_node = entry.second;
      } else if (key == "parameters") {
        return Error(entry.first, sub, "a group of options takes only 'parameters'");
      } else if (key == "mu" || key == "sigma") {
        return Error(entry.first, sub,
                     "normal distributions are not supported; use uniform, int_uniform, log_uniform_values, "
                     "q_uniform or categorical");
      } else {
        return UnknownAmong(entry.first, sub, std::vector<std::string>(std::begin(kParameterKeys),
                                                                       std::end(kParameterKeys)));
      }
    }

    std::string distribution;
    if (distribution_node) {
      const std::string dpath = absl::StrCat(path, ".distribution");
      static const std::vector<std::string> kKnown = {"uniform", "int_uniform", "log_uniform_values", "q_uniform",
                                                      "categorical"};
      if (!distribution_node.IsScalar() ||
          std::find(kKnown.begin(), kKnown.end(), distribution_node.Scalar()) == kKnown.end()) {
        std::string message = absl::StrCat("unknown distribution ", Describe(distribution_node), "; expected ",
                                           absl::StrJoin(kKnown, ", "));
        if (distribution_node.IsScalar()) {
          const std::string close = Suggest(distribution_node.Scalar(), kKnown);
          if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
        }
        return Error(distribution_node, dpath, message);
      }
      distribution = distribution_node.Scalar();
    }

    const bool ranged = min_node || max_node || (!distribution.empty() && distribution != "categorical");
    if (one_value_only && ranged) return one_value(key_node, path);
    if (one_value_only && values_node && values_node.IsSequence() && values_node.size() > 1) {
      return one_value(values_node, absl::StrCat(path, ".values"));
    }
    if (ranged) {
      if (value_node || values_node) {
        return Error(key_node, path, "has both a distribution (min/max) and 'value'/'values'; use one");
      }
      if (probabilities_node) {
        return Error(probabilities_node, absl::StrCat(path, ".probabilities"),
                     "probabilities go with 'values' (distribution: categorical)");
      }
      if (!min_node || !max_node) return Error(node, path, "expected both 'min' and 'max'");
      if (def.kind != ParamKind::kNumber && def.kind != ParamKind::kInt) {
        return Error(key_node, path,
                     absl::StrCat(def.name, " takes ", KindName(def.kind), ": list the choices with 'values'"));
      }
      const bool is_int = def.kind == ParamKind::kInt;
      if (distribution.empty()) distribution = is_int ? "int_uniform" : "uniform";
      if (is_int && (distribution == "uniform" || distribution == "log_uniform_values")) {
        return Error(distribution_node, absl::StrCat(path, ".distribution"),
                     absl::StrCat(def.name, " is an integer: use int_uniform or q_uniform"));
      }
      auto bound = [&](const YAML::Node& n, const std::string& which, double& out) -> absl::Status {
        const std::string bpath = absl::StrCat(path, ".", which);
        long long i = 0;
        const bool int_needed = is_int || distribution == "int_uniform";
        bool read = false;
        if (int_needed) {
          read = AsInt(n, i);
          out = static_cast<double>(i);
          if (!read && IntegerText(n)) {
            return Error(n, bpath, absl::StrCat(def.name, " must be an integer in range, got ", n.Scalar()));
          }
        } else {
          auto real = ReadReal(n, bpath, def.name);
          if (!real.ok()) return real.status();
          read = real->has_value();
          if (read) out = **real;
        }
        if (!read) {
          return Error(n, bpath, absl::StrCat("expected ", int_needed ? "an integer" : "a number", ", got ", Describe(n)));
        }
        nlohmann::json v = is_int ? nlohmann::json(i) : nlohmann::json(out);
        return CheckValue(def, n, bpath, v);
      };
      if (absl::Status s = bound(min_node, "min", param.min); !s.ok()) return s;
      if (absl::Status s = bound(max_node, "max", param.max); !s.ok()) return s;
      if (param.min > param.max) {
        return Error(min_node, absl::StrCat(path, ".min"),
                     absl::StrCat("min (", min_node.Scalar(), ") is greater than max (", max_node.Scalar(), ")"));
      }
      if (distribution == "log_uniform_values" && param.min <= 0) {
        return Error(min_node, absl::StrCat(path, ".min"), "log_uniform_values needs min > 0");
      }
      if (q_node) {
        if (distribution != "q_uniform") {
          return Error(q_node, absl::StrCat(path, ".q"), "q goes with distribution: q_uniform");
        }
        const std::string qpath = absl::StrCat(path, ".q");
        auto q = ReadReal(q_node, qpath, "q");
        if (!q.ok()) return q.status();
        if (!q->has_value() || **q <= 0 || (is_int && **q != std::floor(**q))) {
          return Error(q_node, qpath,
                       absl::StrCat("expected a positive ", is_int ? "integer" : "number", ", got ", Describe(q_node)));
        }
        param.q = **q;
        // Draws round to a multiple of q inside [min, max]: there must be one.
        if (std::ceil(param.min / param.q) * param.q > param.max) {
          return Error(q_node, qpath,
                       absl::StrCat("no multiple of q (", q_node.Scalar(), ") lies between min (", min_node.Scalar(),
                                    ") and max (", max_node.Scalar(), ")"));
        }
      }
      if (distribution == "uniform") param.distribution = Distribution::kUniform;
      if (distribution == "int_uniform") param.distribution = Distribution::kIntUniform;
      if (distribution == "log_uniform_values") param.distribution = Distribution::kLogUniformValues;
      if (distribution == "q_uniform") param.distribution = Distribution::kQUniform;
      spec.parameters.push_back(std::move(param));
      return absl::OkStatus();
    }

    if (q_node) return Error(q_node, absl::StrCat(path, ".q"), "q goes with distribution: q_uniform");
    if (value_node) {
      if (absl::Status s = add(value_node, absl::StrCat(path, ".value")); !s.ok()) return s;
    } else if (values_node) {
      const std::string sub = absl::StrCat(path, ".values");
      if (!values_node.IsSequence()) {
        return Error(values_node, sub, absl::StrCat("expected a list, got ", Describe(values_node)));
      }
      if (values_node.size() == 0) return Error(values_node, sub, "must list at least one value");
      for (size_t i = 0; i < values_node.size(); ++i) {
        if (absl::Status s = add(values_node[i], absl::StrCat(sub, "[", i, "]")); !s.ok()) return s;
      }
    } else {
      return Error(node, path, "expected 'value' or 'values'");
    }
    if (probabilities_node) {
      const std::string ppath = absl::StrCat(path, ".probabilities");
      if (!probabilities_node.IsSequence()) {
        return Error(probabilities_node, ppath, absl::StrCat("expected a list of numbers, got ",
                                                             Describe(probabilities_node)));
      }
      if (probabilities_node.size() != param.values.size()) {
        return Error(probabilities_node, ppath,
                     absl::StrCat("has ", probabilities_node.size(), " probabilities for ", param.values.size(),
                                  " values"));
      }
      double sum = 0;
      for (size_t i = 0; i < probabilities_node.size(); ++i) {
        double pr = 0;
        if (!AsNumber(probabilities_node[i], pr) || !(pr >= 0 && pr <= 1)) {
          return Error(probabilities_node[i], absl::StrCat(ppath, "[", i, "]"),
                       absl::StrCat("expected a probability from 0 to 1, got ", Describe(probabilities_node[i])));
        }
        param.probabilities.push_back(pr);
        sum += pr;
      }
      if (std::abs(sum - 1.0) > 1e-6) {
        return Error(probabilities_node, ppath, absl::StrCat("probabilities sum to ", sum, ", not 1"));
      }
    }
    spec.parameters.push_back(std::move(param));
    return absl::OkStatus();
  }

  std::string source_;
  SweepLimits limits_;
  int group_depth_ = 0;  // AddParameters calls in progress
  std::string method_ = "grid";
};

bool IsImageKey(const std::string& name) {
  const ParamDef* def = FindRunKey(name);
  return def != nullptr && IsImageKind(def->kind);
}

bool IsWeightsKey(const std::string& name) {
  const ParamDef* def = FindRunKey(name);
  return def != nullptr && def->kind == ParamKind::kWeights;
}

}  // namespace

size_t SweepSpec::GridSize() const {
  size_t n = 1;
  bool overflow = false;
  for (const auto& p : parameters) {
    if (p.values.empty()) return 0;
    overflow = overflow || __builtin_mul_overflow(n, p.values.size(), &n);
  }
  return overflow ? kGridSizeOverflow : n;
}

std::string SweepSpec::DescribeGridSize() const {
  const size_t n = GridSize();
  if (n == kGridSizeOverflow) return absl::StrCat("more than ", kGridSizeOverflow - 1, " points");
  return absl::StrCat(n, n == 1 ? " point" : " points");
}

absl::StatusOr<std::vector<RunParams>> SweepSpec::Expand() const {
  const size_t total = GridSize();
  std::vector<RunParams> runs;
  runs.reserve(total);
  std::vector<size_t> digit(parameters.size(), 0);
  for (size_t i = 0; i < total; ++i) {
    nlohmann::json j = nlohmann::json::object();
    for (size_t p = 0; p < parameters.size(); ++p) j[parameters[p].name] = parameters[p].values[digit[p]];
    auto run = RunParams::FromJson(j);
    if (!run.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": grid point ", i, " (counting from 0): ",
                                                     run.status().message()));
    }
    runs.push_back(std::move(*run));
    // Odometer increment: the last parameter varies fastest.
    for (size_t p = parameters.size(); p-- > 0;) {
      if (++digit[p] < parameters[p].values.size()) break;
      digit[p] = 0;
    }
  }
  return runs;
}

namespace {

// Calls fn(reference) for each image reference in one value of an image
// parameter: the value itself, or each element of a list.
template <typename Json, typename Fn>
void ForEachRef(Json& value, Fn&& fn) {
  if (value.is_array()) {
    for (auto& item : value) fn(item);
  } else {
    fn(value);
  }
}

}  // namespace

namespace {

std::vector<SweepSpec::FileRef> RefsOf(const std::vector<ParameterSpec>& parameters,
                                       bool (*wanted)(const std::string&)) {
  std::vector<SweepSpec::FileRef> refs;
  for (const auto& p : parameters) {
    if (!wanted(p.name)) continue;
    for (size_t i = 0; i < p.values.size(); ++i) {
      ForEachRef(p.values[i], [&](const nlohmann::json& item) {
        const std::string ref = item.get<std::string>();
        auto same = [&ref](const SweepSpec::FileRef& r) { return r.ref == ref; };
        if (std::find_if(refs.begin(), refs.end(), same) == refs.end()) {
          refs.push_back(SweepSpec::FileRef{ref, p.name, i < p.lines.size() ? p.lines[i] : 0});
        }
      });
    }
  }
  return refs;
}

absl::Status MapRefs(std::vector<ParameterSpec>& parameters, bool (*wanted)(const std::string&),
                     const std::function<absl::StatusOr<std::string>(const std::string&)>& fn) {
  absl::Status status;
  for (auto& p : parameters) {
    if (!wanted(p.name)) continue;
    for (auto& v : p.values) {
      ForEachRef(v, [&](nlohmann::json& item) {
        if (!status.ok()) return;
        auto mapped = fn(item.get<std::string>());
        if (mapped.ok()) {
          item = *mapped;
        } else {
          status = mapped.status();
        }
      });
    }
  }
  return status;
}

}  // namespace

std::vector<SweepSpec::FileRef> SweepSpec::ImageRefs() const { return RefsOf(parameters, IsImageKey); }

std::vector<SweepSpec::FileRef> SweepSpec::WeightsRefs() const { return RefsOf(parameters, IsWeightsKey); }

absl::Status SweepSpec::MapImages(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn) {
  return MapRefs(parameters, IsImageKey, fn);
}

absl::Status SweepSpec::MapWeights(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn) {
  return MapRefs(parameters, IsWeightsKey, fn);
}

namespace {

const char* DistributionName(Distribution d) {
  switch (d) {
    case Distribution::kValues:
      return "categorical";
    case Distribution::kUniform:
      return "uniform";
    case Distribution::kIntUniform:
      return "int_uniform";
    case Distribution::kLogUniformValues:
      return "log_uniform_values";
    case Distribution::kQUniform:
      return "q_uniform";
  }
  return "";
}

// SplitMix64's finaliser: spreads nearby seeds (0, 1, 2...) over the whole
// state space before they seed the Mersenne Twister.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

nlohmann::json SweepSpec::ToJson() const {
  nlohmann::json params = nlohmann::json::array();
  for (const auto& p : parameters) {
    nlohmann::json j = {{"name", p.name}, {"distribution", DistributionName(p.distribution)}};
    if (p.distribution == Distribution::kValues) {
      j["values"] = p.values;
      if (!p.probabilities.empty()) j["probabilities"] = p.probabilities;
    } else {
      j["min"] = p.min;
      j["max"] = p.max;
      if (p.distribution == Distribution::kQUniform) j["q"] = p.q;
    }
    params.push_back(std::move(j));
  }
  nlohmann::json j = {{"name", name},
                      {"description", description},
                      {"method", method},
                      {"max_attempts", max_attempts},
                      {"metric", multi_objective() ? nlohmann::json{{"pareto", pareto}}
                                                   : nlohmann::json{{"name", metric}, {"goal", goal}}},
                      {"run_cap", run_cap},
                      {"max_concurrent", max_concurrent},
                      {"parameters", params}};
  if (!early_terminate.type.empty()) {
    j["early_terminate"] = {{"type", early_terminate.type},
                            {"min_iter", early_terminate.min_iter},
                            {"eta", early_terminate.eta}};
  }
  return j;
}

SweepRandom::SweepRandom(uint64_t seed) : engine_(Mix(seed)) {}

SweepRandom::SweepRandom(uint64_t seed, uint64_t draw) : engine_(Mix(Mix(seed) ^ Mix(draw + 1))) {}

double SweepRandom::Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

size_t SweepRandom::Choice(size_t n, const std::vector<double>& probabilities) {
  if (n == 0) return 0;
  const double u = Uniform();
  if (probabilities.size() != n) return std::min(n - 1, static_cast<size_t>(u * static_cast<double>(n)));
  double cumulative = 0;
  for (size_t i = 0; i < n; ++i) {
    cumulative += probabilities[i];
    if (u < cumulative) return i;
  }
  // Rounding left the sum a hair under 1: the last choice with any weight.
  for (size_t i = n; i-- > 0;) {
    if (probabilities[i] > 0) return i;
  }
  return n - 1;
}

size_t SweepSpec::RunCount() const {
  if (method == "grid") return GridSize();
  return static_cast<size_t>(run_cap);
}

std::vector<SearchDimension> SweepSpec::SearchSpace() const {
  std::vector<SearchDimension> space;
  for (const auto& p : parameters) {
    if (p.distribution == Distribution::kValues) {
      space.push_back(SearchDimension{static_cast<int>(p.values.size()), p.probabilities});
    } else {
      space.push_back(SearchDimension{0, {}});
    }
  }
  return space;
}

absl::StatusOr<RunParams> SweepSpec::Resolve(const std::vector<double>& point) const {
  if (point.size() != parameters.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a point has ", point.size(), " coordinates for ", parameters.size(), " parameters"));
  }
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const ParameterSpec& p = parameters[i];
    if (p.distribution == Distribution::kValues) {
      const double x = std::max(0.0, point[i]);
      j[p.name] = p.values[std::min(p.values.size() - 1, static_cast<size_t>(x))];
      continue;
    }
    const double u = std::min(std::max(point[i], 0.0), std::nextafter(1.0, 0.0));
    const bool is_int = FindRunKey(p.name)->kind == ParamKind::kInt;
    double v = 0;
    switch (p.distribution) {
      case Distribution::kUniform:
        v = p.min + u * (p.max - p.min);
        break;
      case Distribution::kIntUniform:
        v = std::min(p.max, std::floor(p.min + u * (p.max - p.min + 1)));
        break;
      case Distribution::kLogUniformValues:
        v = std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min)));
        v = std::min(std::max(v, p.min), p.max);
        break;
      case Distribution::kQUniform:
        v = std::round((p.min + u * (p.max - p.min)) / p.q) * p.q;
        // Rounding to the grid of q may step outside [min, max]: step back.
        if (v < p.min) v += p.q;
        if (v > p.max) v -= p.q;
        break;
      case Distribution::kValues:
        break;
    }
    // Bounds float32 holds give draws it holds, except a nonzero draw too
    // small for it; then min <= 0 <= max, and 0 is the value float32 gives.
    if (std::fabs(v) < FLT_TRUE_MIN) v = 0;
    if (is_int) {
      j[p.name] = static_cast<long long>(std::llround(v));
    } else {
      j[p.name] = p.distribution == Distribution::kIntUniform ? std::round(v) : v;
    }
  }
  auto run = RunParams::FromJson(j);
  if (!run.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", run.status().message()));
  return run;
}

std::vector<double> SweepSpec::RandomPoint(SweepRandom& random) const {
  std::vector<double> point;
  point.reserve(parameters.size());
  for (const auto& p : parameters) {
    if (p.distribution == Distribution::kValues) {
      point.push_back(static_cast<double>(random.Choice(p.values.size(), p.probabilities)));
    } else {
      point.push_back(random.Uniform());
    }
  }
  return point;
}

absl::StatusOr<std::vector<RunParams>> SweepSpec::Draw(uint64_t seed, size_t first, size_t count) const {
  std::vector<RunParams> runs;
  runs.reserve(count);
  for (size_t i = first; i < first + count; ++i) {
    SweepRandom random(seed, i);
    auto run = Resolve(RandomPoint(random));
    if (!run.ok()) return run.status();
    runs.push_back(std::move(*run));
  }
  return runs;
}

namespace {

// The value of metric `name` among `values`; nullopt for an eval metric of
// a run without an evaluation.
std::optional<double> MetricValue(const std::string& name, const SweepSpec::RunValues& values) {
  if (name == "loss/total") return values.total;
  if (name == "loss/style") return values.style;
  if (name == "loss/content") return values.content;
  if (name == "loss/tv") return values.tv;
  if (!values.eval) return std::nullopt;
  return EvalMetricValue(*values.eval, name);
}

// "a", "a and b", "a, b and c".
std::string JoinList(const std::vector<std::string>& items) {
  if (items.size() <= 1) return absl::StrJoin(items, "");
  return absl::StrCat(absl::StrJoin(items.begin(), items.end() - 1, ", "), " and ", items.back());
}

}  // namespace

std::optional<std::vector<double>> SweepSpec::ObjectivePoint(const RunValues& values) const {
  std::vector<double> point;
  if (!multi_objective()) {
    const std::optional<double> value = MetricValue(metric, values);
    if (!value) return std::nullopt;
    point.push_back(goal == "maximize" ? -*value : *value);
    return point;
  }
  for (const std::string& name : pareto) {
    const std::optional<double> value = MetricValue(name, values);
    if (!value) return std::nullopt;
    point.push_back(EvalHigherIsBetter(name) ? -*value : *value);
  }
  return point;
}

std::optional<double> SweepSpec::Objective(const RunValues& values) const {
  if (multi_objective()) return std::nullopt;
  const auto point = ObjectivePoint(values);
  if (!point) return std::nullopt;
  return point->front();
}

SweepSpec SweepSpec::ObjectiveFromJson(const nlohmann::json& spec_json) {
  SweepSpec objective;
  const auto metric = spec_json.is_object() ? spec_json.find("metric") : spec_json.end();
  if (!spec_json.is_object() || metric == spec_json.end() || !metric->is_object()) {
    objective.metric = "loss/total";
    objective.goal = "minimize";
    return objective;
  }
  if (const auto pareto = metric->find("pareto"); pareto != metric->end() && pareto->is_array()) {
    std::vector<std::string> names;
    for (const auto& name : *pareto) {
      if (name.is_string() && IsEvalMetric(name.get<std::string>())) names.push_back(name.get<std::string>());
    }
    if (names.size() >= 2) {
      objective.pareto = std::move(names);
      return objective;
    }
  }
  const auto name = metric->find("name");
  const bool known = name != metric->end() && name->is_string() &&
                     (IsEvalMetric(name->get<std::string>()) || IsLossMetric(name->get<std::string>()));
  objective.metric = known ? name->get<std::string>() : "loss/total";
  const auto goal = metric->find("goal");
  if (goal != metric->end() && (*goal == "minimize" || *goal == "maximize")) {
    objective.goal = goal->get<std::string>();
  } else {
    objective.goal = NaturalGoal(objective.metric);
  }
  return objective;
}

std::vector<std::string> SweepSpec::Warnings() const {
  // A pareto list holds evaluation metrics only (ParsePareto), so only a
  // single loss metric ranks by the runs' own losses.
  if (multi_objective() || !IsLossMetric(metric)) return {};
  std::vector<std::string> varied;
  std::string weight;  // the first varied loss weight, for the example
  for (const ParameterSpec& p : parameters) {
    const bool varies = p.distribution != Distribution::kValues || p.values.size() > 1;
    const bool scales = std::find(std::begin(kLossScaleKeys), std::end(kLossScaleKeys), p.name) !=
                        std::end(kLossScaleKeys);
    if (!varies || !scales) continue;
    varied.push_back(p.name);
    if (weight.empty() && (p.name == "style_weight" || p.name == "content_weight" || p.name == "tv_weight")) {
      weight = p.name;
    }
  }
  if (varied.empty()) return {};
  const std::string why =
      weight.empty() ? "each run's loss measures other terms at another scale, so the ranking says little about "
                       "the images"
                     : absl::StrCat("runs with a smaller ", weight, " score lower whatever their image");
  return {absl::StrCat("metric ", metric, " ranks runs by their own weighted losses, but this sweep varies ",
                       JoinList(varied), ": ", why,
                       ". Rank by eval/score (the default) or another eval/* metric to compare the images.")};
}

absl::Status CheckSweepYamlSize(const std::string& source, uint64_t bytes) {
  if (bytes <= kMaxSweepYamlBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(source, " is ", bytes, " bytes; a sweep file may be at most ",
                                                 DescribeByteLimit(kMaxSweepYamlBytes)));
}

absl::StatusOr<SweepSpec> ParseSweep(const std::string& yaml_text, const std::string& source,
                                     const SweepLimits& limits) {
  // yaml-cpp builds the whole document in memory, several times the text's size.
  if (absl::Status s = CheckSweepYamlSize(source, yaml_text.size()); !s.ok()) return s;
  return Parser(source, limits).Parse(yaml_text);
}

absl::StatusOr<SweepSpec> LoadSweepFile(const std::string& path) {
  std::error_code ec;
  if (const uintmax_t size = std::filesystem::file_size(path, ec); !ec) {
    if (absl::Status s = CheckSweepYamlSize(path, size); !s.ok()) return s;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read sweep file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  auto spec = ParseSweep(text.str(), path);
  if (!spec.ok()) return spec.status();
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  auto resolve = [&base](const std::string& ref) -> absl::StatusOr<std::string> {
    std::filesystem::path p(ref);
    return (p.is_absolute() ? p : base / p).lexically_normal().string();
  };
  if (absl::Status s = spec->MapImages(resolve); !s.ok()) return s;
  if (absl::Status s = spec->MapWeights(resolve); !s.ok()) return s;
  return spec;
}

}  // namespace stylesweep
