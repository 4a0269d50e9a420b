#include "common/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/text.h"

namespace stylesweep {
namespace {

constexpr const char* kSweepKeys[] = {"name", "description", "method", "metric", "parameters", "max_attempts"};

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

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  absl::StatusOr<SweepSpec> Parse(const std::string& text) {
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
        } else if (s != "grid") {
          if (s == "random" || s == "bayes") {
            return Error(value, key, absl::StrCat("method '", s, "' is not supported by this version; use grid"));
          }
          return Error(value, key, absl::StrCat("unknown method '", s, "'; expected grid"));
        }
      } else if (key == "max_attempts") {
        long long n = 0;
        if (!AsInt(value, n) || n < 1 || n > 100) {
          return Error(value, key, absl::StrCat("expected an integer from 1 to 100, got ", Describe(value)));
        }
        spec.max_attempts = static_cast<int>(n);
      } else if (key == "metric") {
        // Recorded for search methods; grid sweeps always report every loss.
      } else if (const ParamDef* def = FindRunKey(key)) {
        if (absl::Status s = AddParameter(spec, seen, *def, entry.first, value, key, /*top_level=*/true); !s.ok()) {
          return s;
        }
      } else {
        return UnknownKey(entry.first, key, /*top_level=*/true);
      }
    }

    if (has_parameters) {
      if (!parameters.IsMap()) {
        return Error(parameters, "parameters",
                     absl::StrCat("expected a mapping of parameter names, got ", Describe(parameters)));
      }
      for (const auto& entry : parameters) {
        const std::string key = entry.first.Scalar();
        const std::string path = absl::StrCat("parameters.", key);
        const ParamDef* def = FindRunKey(key);
        if (def == nullptr) return UnknownKey(entry.first, path, /*top_level=*/false);
        if (absl::Status s = AddParameter(spec, seen, *def, entry.first, entry.second, path, /*top_level=*/false);
            !s.ok()) {
          return s;
        }
      }
    }

    for (const char* required : {"content", "style"}) {
      if (seen.count(required) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(source_, ": '", required,
                                                       "' is required (an image path, at the top level or under "
                                                       "parameters)"));
      }
    }
    if (spec.GridSize() > kMaxGridSize) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ": the grid has ", spec.GridSize(),
                                                     " points, more than the limit of ", kMaxGridSize));
    }
    // Rules between parameters (blend weights per style image) hold per run.
    if (auto runs = spec.Expand(); !runs.ok()) return runs.status();
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
    auto number = [&](const YAML::Node& n, nlohmann::json& out) {
      if (!n.IsScalar() || n.Tag() == "!") return false;
      try {
        out = n.as<double>();
        return true;
      } catch (const YAML::Exception&) {
        return false;
      }
    };
    switch (def.kind) {
      case ParamKind::kString:
      case ParamKind::kImage:
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
        nlohmann::json value;
        if (!number(node, value)) return wrong();
        return value;
      }
      case ParamKind::kNumberList: {
        nlohmann::json list = nlohmann::json::array();
        if (!node.IsSequence()) return wrong();
        for (const auto& item : node) {
          nlohmann::json value;
          if (!number(item, value)) return wrong();
          list.push_back(value);
        }
        return list;
      }
      case ParamKind::kInt: {
        long long n = 0;
        if (!AsInt(node, n)) return wrong();
        return nlohmann::json(n);
      }
      case ParamKind::kIntList: {
        nlohmann::json list = nlohmann::json::array();
        if (!node.IsSequence()) return wrong();
        for (const auto& item : node) {
          long long n = 0;
          if (!AsInt(item, n)) return wrong();
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
    if (IsImageKind(def.kind)) return absl::OkStatus();  // resolved and read later
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

  absl::Status AddParameter(SweepSpec& spec, std::set<std::string>& seen, const ParamDef& def,
                            const YAML::Node& key_node, const YAML::Node& node, const std::string& path,
                            bool top_level) {
    if (!seen.insert(def.name).second) {
      return Error(key_node, path, "is set twice (at the top level and under parameters)");
    }
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

    const bool is_spec = node.IsMap();
    if (!is_spec) {
      if (!top_level) {
        return Error(node, path, "expected a mapping with 'value' or 'values' (e.g. {values: [1, 2]})");
      }
      if (absl::Status s = add(node, path); !s.ok()) return s;
    } else {
      if (node["value"] && node["values"]) return Error(key_node, path, "has both 'value' and 'values'; use one");
      bool has_value = false;
      for (const auto& entry : node) {
        const std::string key = entry.first.Scalar();
        const std::string sub = absl::StrCat(path, ".", key);
        if (key == "value") {
          if (absl::Status s = add(entry.second, sub); !s.ok()) return s;
          has_value = true;
        } else if (key == "values") {
          if (!entry.second.IsSequence()) {
            return Error(entry.second, sub, absl::StrCat("expected a list, got ", Describe(entry.second)));
          }
          if (entry.second.size() == 0) return Error(entry.second, sub, "must list at least one value");
          for (size_t i = 0; i < entry.second.size(); ++i) {
            if (absl::Status s = add(entry.second[i], absl::StrCat(sub, "[", i, "]")); !s.ok()) return s;
          }
          has_value = true;
        } else if (key == "min" || key == "max" || key == "distribution" || key == "mu" || key == "sigma" ||
                   key == "q" || key == "probabilities") {
          return Error(entry.first, sub,
                       "distributions need method: random or bayes, which this version does not support yet; "
                       "list grid points with 'values'");
        } else {
          std::string message = "unknown key";
          const std::string close = ClosestMatch(key, {"value", "values"});
          if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
          return Error(entry.first, sub, message);
        }
      }
      if (!has_value) return Error(node, path, "expected 'value' or 'values'");
    }
    spec.parameters.push_back(std::move(param));
    return absl::OkStatus();
  }

  std::string source_;
};

bool IsImageKey(const std::string& name) {
  const ParamDef* def = FindRunKey(name);
  return def != nullptr && IsImageKind(def->kind);
}

}  // namespace

size_t SweepSpec::GridSize() const {
  size_t n = 1;
  for (const auto& p : parameters) {
    if (p.values.empty()) return 0;
    if (n > kMaxGridSize * 10) return n;  // saturate: avoids overflow on absurd grids
    n *= p.values.size();
  }
  return n;
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

std::vector<SweepSpec::ImageRef> SweepSpec::ImageRefs() const {
  std::vector<ImageRef> refs;
  for (const auto& p : parameters) {
    if (!IsImageKey(p.name)) continue;
    for (size_t i = 0; i < p.values.size(); ++i) {
      ForEachRef(p.values[i], [&](const nlohmann::json& item) {
        const std::string ref = item.get<std::string>();
        auto same = [&ref](const ImageRef& r) { return r.ref == ref; };
        if (std::find_if(refs.begin(), refs.end(), same) == refs.end()) {
          refs.push_back(ImageRef{ref, p.name, i < p.lines.size() ? p.lines[i] : 0});
        }
      });
    }
  }
  return refs;
}

absl::Status SweepSpec::MapImages(const std::function<absl::StatusOr<std::string>(const std::string&)>& fn) {
  absl::Status status;
  for (auto& p : parameters) {
    if (!IsImageKey(p.name)) continue;
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

nlohmann::json SweepSpec::ToJson() const {
  nlohmann::json params = nlohmann::json::array();
  for (const auto& p : parameters) params.push_back({{"name", p.name}, {"values", p.values}});
  return {{"name", name},          {"description", description}, {"method", method},
          {"max_attempts", max_attempts}, {"parameters", params}};
}

absl::StatusOr<SweepSpec> ParseSweep(const std::string& yaml_text, const std::string& source) {
  return Parser(source).Parse(yaml_text);
}

absl::StatusOr<SweepSpec> LoadSweepFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read sweep file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  auto spec = ParseSweep(text.str(), path);
  if (!spec.ok()) return spec.status();
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  absl::Status s = spec->MapImages([&base](const std::string& ref) -> absl::StatusOr<std::string> {
    std::filesystem::path p(ref);
    return (p.is_absolute() ? p : base / p).lexically_normal().string();
  });
  if (!s.ok()) return s;
  return spec;
}

}  // namespace stylesweep
