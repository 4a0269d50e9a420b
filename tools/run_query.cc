#include "tools/run_query.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/evaluation.h"
#include "common/pareto.h"
#include "common/text.h"

namespace stylesweep {

std::optional<double> RunRow::duration_s() const {
  if (run.started_ms == 0 || run.finished_ms == 0) return std::nullopt;
  return (run.finished_ms - run.started_ms) / 1000.0;
}

nlohmann::json RunRow::Field(const std::string& name) const {
  if (name == "state") return std::string(RunStateName(run.state));
  if (name == "agent") return run.agent;
  if (name == "run") return run.index;
  if (name == "attempt") return run.attempt;
  if (name == "diverged") return run.diverged();
  if (name == "step") return has_losses() ? nlohmann::json(run.last_step) : nlohmann::json();
  if (name == "duration") {
    auto d = duration_s();
    return d ? nlohmann::json(*d) : nlohmann::json();
  }
  if (name.rfind("loss/", 0) == 0) {
    if (!has_losses()) return nullptr;
    const std::string which = name.substr(5);
    if (which == "total") return run.total_loss;
    if (which == "style") return run.style_loss;
    if (which == "content") return run.content_loss;
    if (which == "tv") return run.tv_loss;
    return nullptr;
  }
  if (name == "eval_step") return has_eval() ? nlohmann::json(run.eval_step) : nlohmann::json();
  if (IsEvalMetric(name)) {
    if (!has_eval()) return nullptr;
    return *EvalMetricValue(run.eval, name);
  }
  if (params.is_object() && params.contains(name)) return params[name];
  return nullptr;
}

std::vector<RunRow> MakeRunRows(const std::vector<RunRecord>& runs, const nlohmann::json& image_names) {
  std::vector<RunRow> rows;
  rows.reserve(runs.size());
  auto rename = [&image_names](nlohmann::json& value) {
    auto one = [&image_names](nlohmann::json& v) {
      if (v.is_string() && image_names.is_object() && image_names.contains(v.get<std::string>())) {
        v = image_names[v.get<std::string>()];
      }
    };
    if (value.is_array()) {
      for (auto& item : value) one(item);
    } else {
      one(value);
    }
  };
  for (const RunRecord& run : runs) {
    RunRow row{run, nlohmann::json::parse(run.params_json, nullptr, /*allow_exceptions=*/false)};
    if (!row.params.is_object()) row.params = nlohmann::json::object();
    for (const char* key : {"content", "style"}) {
      if (row.params.contains(key)) rename(row.params[key]);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::string> FieldNames(const std::vector<RunRow>& rows) {
  std::vector<std::string> names = {"state",      "agent",      "run",          "attempt", "step",     "duration",
                                    "loss/total", "loss/style", "loss/content", "loss/tv", "diverged"};
  for (const std::string& name : EvalMetricNames()) names.push_back(name);
  names.push_back("eval_step");
  std::set<std::string> seen(names.begin(), names.end());
  for (const RunRow& row : rows) {
    for (const auto& [key, value] : row.params.items()) {
      if (seen.insert(key).second) names.push_back(key);
    }
  }
  return names;
}

namespace {

absl::Status UnknownField(const std::string& what, const std::string& name, const std::vector<std::string>& fields) {
  std::string message = absl::StrCat(what, ": unknown field '", name, "'");
  if (auto close = ClosestMatch(name, fields); !close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
  absl::StrAppend(&message, "; fields are state, agent, run, attempt, step, duration, loss/total, loss/style, "
                            "loss/content, loss/tv, diverged, ", absl::StrJoin(EvalMetricNames(), ", "),
                  ", eval_step and the sweep's parameters");
  return absl::InvalidArgumentError(message);
}

bool KnownField(const std::string& name, const std::vector<std::string>& fields) {
  return std::find(fields.begin(), fields.end(), name) != fields.end();
}

// Orders values of one field: numbers numerically, everything else by text.
// nullopt when they cannot be compared (a number and a word, or a NaN, which
// IEEE 754 leaves unordered: only `!=` holds for it).
std::optional<int> Compare(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_number() != b.is_number()) return std::nullopt;
  const std::string x = a.is_string() ? a.get<std::string>() : a.dump();
  const std::string y = b.is_string() ? b.get<std::string>() : b.dump();
  return x < y ? -1 : (x > y ? 1 : 0);
}

}  // namespace

struct RunFilter::Node {
  enum class Kind { kAnd, kOr, kNot, kCompare } kind;
  std::shared_ptr<const Node> left, right;
  std::string field, op;
  nlohmann::json value;

  bool Eval(const RunRow& row) const {
    switch (kind) {
      case Kind::kAnd:
        return left->Eval(row) && right->Eval(row);
      case Kind::kOr:
        return left->Eval(row) || right->Eval(row);
      case Kind::kNot:
        return !left->Eval(row);
      case Kind::kCompare: {
        nlohmann::json actual = row.Field(field);
        if (actual.is_null()) return false;
        if (actual.is_array()) {
          // A list parameter (layers) matches when the value is one of its
          // elements (=) or none of them (!=); ordering makes no sense.
          const bool contains = std::any_of(actual.begin(), actual.end(),
                                            [this](const nlohmann::json& item) { return Compare(item, value) == 0; });
          if (op == "=") return contains;
          if (op == "!=") return !contains;
          return false;
        }
        auto c = Compare(actual, value);
        if (!c) return op == "!=";
        if (op == "=") return *c == 0;
        if (op == "!=") return *c != 0;
        if (op == "<") return *c < 0;
        if (op == "<=") return *c <= 0;
        if (op == ">") return *c > 0;
        return *c >= 0;
      }
    }
    return false;
  }
};

namespace {

class WhereParser {
 public:
  WhereParser(const std::string& text, const std::vector<std::string>& fields) : text_(text), fields_(fields) {}

  absl::StatusOr<std::shared_ptr<const RunFilter::Node>> Parse() {
    auto node = ParseOr();
    if (!node.ok()) return node;
    SkipSpace();
    if (pos_ < text_.size()) return Error(absl::StrCat("unexpected '", text_.substr(pos_), "'"));
    return node;
  }

 private:
  using NodePtr = std::shared_ptr<const RunFilter::Node>;
  using Kind = RunFilter::Node::Kind;

  absl::Status Error(const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat("--where: at column ", pos_ + 1, " of \"", text_, "\": ", message));
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  // A keyword (and/or/not) as a whole word, case-insensitive.
  bool Keyword(const char* word) {
    SkipSpace();
    const size_t n = std::char_traits<char>::length(word);
    if (pos_ + n > text_.size()) return false;
    for (size_t i = 0; i < n; ++i) {
      if (std::tolower(static_cast<unsigned char>(text_[pos_ + i])) != word[i]) return false;
    }
    if (pos_ + n < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_ + n])) || text_[pos_ + n] == '_')) {
      return false;
    }
    pos_ += n;
    return true;
  }

  static NodePtr Join(Kind kind, NodePtr left, NodePtr right) {
    auto node = std::make_shared<RunFilter::Node>();
    node->kind = kind;
    node->left = std::move(left);
    node->right = std::move(right);
    return node;
  }

  absl::StatusOr<NodePtr> ParseOr() {
    auto left = ParseAnd();
    if (!left.ok()) return left;
    while (Keyword("or")) {
      auto right = ParseAnd();
      if (!right.ok()) return right;
      left = Join(Kind::kOr, *left, *right);
    }
    return left;
  }

  absl::StatusOr<NodePtr> ParseAnd() {
    auto left = ParseUnary();
    if (!left.ok()) return left;
    while (Keyword("and")) {
      auto right = ParseUnary();
      if (!right.ok()) return right;
      left = Join(Kind::kAnd, *left, *right);
    }
    return left;
  }

  // Each 'not' and '(' nests one level deeper; the parser recurses once per
  // level, so the depth is bounded before it can exhaust the stack.
  absl::Status Deeper(size_t column) {
    if (++depth_ <= kMaxWhereDepth) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("--where: expression nested deeper than ", kMaxWhereDepth,
                                                   " levels (at column ", column, ")"));
  }

  absl::StatusOr<NodePtr> ParseUnary() {
    SkipSpace();
    const size_t column = pos_ + 1;
    if (Keyword("not")) {
      if (absl::Status s = Deeper(column); !s.ok()) return s;
      auto inner = ParseUnary();
      --depth_;
      if (!inner.ok()) return inner;
      return Join(Kind::kNot, *inner, nullptr);
    }
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      if (absl::Status s = Deeper(column); !s.ok()) return s;
      auto inner = ParseOr();
      --depth_;
      if (!inner.ok()) return inner;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ')') return Error("expected ')'");
      ++pos_;
      return inner;
    }
    return ParseComparison();
  }

  std::string Word() {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/' || c == '.' || c == '-' || c == '+' ||
          c == ':') {
        ++pos_;
      } else {
        break;
      }
    }
    return text_.substr(start, pos_ - start);
  }

  absl::StatusOr<NodePtr> ParseComparison() {
    const std::string field = Word();
    if (field.empty()) return Error("expected a field name");
    if (!KnownField(field, fields_)) return UnknownField("--where", field, fields_);
    SkipSpace();
    std::string op;
    for (const char* candidate : {"<=", ">=", "!=", "==", "=", "<", ">"}) {
      if (text_.compare(pos_, std::char_traits<char>::length(candidate), candidate) == 0) {
        op = candidate;
        break;
      }
    }
    if (op.empty()) return Error(absl::StrCat("expected =, !=, <, <=, > or >= after '", field, "'"));
    pos_ += op.size();
    if (op == "==") op = "=";
    SkipSpace();
    nlohmann::json value;
    if (pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"')) {
      const char quote = text_[pos_++];
      const size_t end = text_.find(quote, pos_);
      if (end == std::string::npos) return Error("unterminated string");
      value = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
    } else {
      const std::string word = Word();
      if (word.empty()) return Error(absl::StrCat("expected a value after '", field, " ", op, "'"));
      char* end = nullptr;
      const double number = std::strtod(word.c_str(), &end);
      const bool is_number = end != nullptr && *end == '\0';
      if (is_number && std::isnan(number)) {
        return Error(absl::StrCat("'", word, "' is not a value to compare with: NaN equals nothing, not even itself; ",
                                  "runs whose loss became NaN are found with diverged = true"));
      }
      value = is_number ? nlohmann::json(number) : nlohmann::json(word);
    }
    auto node = std::make_shared<RunFilter::Node>();
    node->kind = Kind::kCompare;
    node->field = field;
    node->op = op;
    node->value = std::move(value);
    return NodePtr(node);
  }

  const std::string& text_;
  const std::vector<std::string>& fields_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<RunFilter> RunFilter::Parse(const std::string& expression, const std::vector<std::string>& fields) {
  auto root = WhereParser(expression, fields).Parse();
  if (!root.ok()) return root.status();
  RunFilter filter;
  filter.root_ = *root;
  return filter;
}

bool RunFilter::Matches(const RunRow& row) const { return root_ == nullptr || root_->Eval(row); }

absl::StatusOr<SortKey> ParseSortKey(const std::string& text, const std::vector<std::string>& fields) {
  SortKey key;
  key.field = text;
  if (!key.field.empty() && key.field[0] == '-') {
    key.descending = true;
    key.field.erase(0, 1);
  }
  if (!KnownField(key.field, fields)) return UnknownField("--sort", key.field, fields);
  return key;
}

bool IsLossField(const std::string& name) { return name.rfind("loss/", 0) == 0; }

bool IsMetricField(const std::string& name) { return IsLossField(name) || IsEvalMetric(name); }

bool HigherIsBetter(const std::string& name) { return EvalHigherIsBetter(name); }

std::string DefaultMetric(const std::vector<RunRow>& rows) {
  const bool evaluated =
      std::any_of(rows.begin(), rows.end(), [](const RunRow& row) { return row.has_eval() && !row.diverged(); });
  return evaluated ? "eval/score" : "loss/total";
}

const RunRow* BestRow(const std::vector<RunRow>& rows, const std::string& metric) {
  const bool maximize = HigherIsBetter(metric);
  const RunRow* best = nullptr;
  double best_value = 0;
  for (const RunRow& row : rows) {
    if (row.run.state != RunState::kSucceeded || row.diverged()) continue;
    const nlohmann::json value = row.Field(metric);
    if (!value.is_number()) continue;
    const double v = value.get<double>();
    if (std::isnan(v)) continue;
    if (best == nullptr || (maximize ? v > best_value : v < best_value)) {
      best = &row;
      best_value = v;
    }
  }
  return best;
}

bool IsParetoCandidate(const RunRow& row) { return row.has_eval() && !row.diverged(); }

std::vector<size_t> ParetoFrontRows(const std::vector<RunRow>& rows) {
  std::vector<size_t> candidates;
  std::vector<std::vector<double>> points;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!IsParetoCandidate(rows[i])) continue;
    candidates.push_back(i);
    std::vector<double> point;
    for (const char* objective : kParetoObjectives) point.push_back(*EvalMetricValue(rows[i].run.eval, objective));
    points.push_back(std::move(point));
  }
  std::vector<size_t> front;
  for (size_t k : ParetoFront(points)) front.push_back(candidates[k]);
  return front;
}

void SortRows(std::vector<RunRow>& rows, const SortKey& key) {
  const bool by_metric = IsMetricField(key.field);
  // 0: a value to order by; 1: a diverged run's metric (the worst); 2: none.
  auto rank = [by_metric](const RunRow& row, const nlohmann::json& value) {
    if (value.is_null()) return 2;
    return by_metric && row.diverged() ? 1 : 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&key, &rank](const RunRow& a, const RunRow& b) {
    const nlohmann::json x = a.Field(key.field), y = b.Field(key.field);
    const int rank_a = rank(a, x), rank_b = rank(b, y);
    if (rank_a != rank_b) return rank_a < rank_b;
    if (rank_a != 0) return false;  // diverged runs, and runs without a value, keep their order
    auto c = Compare(x, y);
    if (!c) return x.is_number();  // numbers before words
    return key.descending ? *c > 0 : *c < 0;
  });
}

std::vector<RunGroup> GroupRows(const std::vector<RunRow>& rows, const std::string& field, const std::string& metric,
                                std::optional<bool> maximize_option) {
  const bool by_metric = IsMetricField(metric);
  const bool maximize = maximize_option.value_or(HigherIsBetter(metric));
  std::vector<RunGroup> groups;
  std::vector<std::vector<double>> samples;
  for (const RunRow& row : rows) {
    const nlohmann::json value = row.Field(field);
    auto it = std::find_if(groups.begin(), groups.end(), [&value](const RunGroup& g) { return g.value == value; });
    if (it == groups.end()) {
      groups.push_back(RunGroup{value});
      samples.emplace_back();
      it = groups.end() - 1;
    }
    RunGroup& group = *it;
    ++group.runs;
    if (by_metric && row.diverged()) {
      ++group.diverged;
      continue;
    }
    const nlohmann::json m = row.Field(metric);
    if (!m.is_number()) continue;
    const double v = m.get<double>();
    if (group.with_metric == 0 || (maximize ? v > group.best : v < group.best)) {
      group.best = v;
      group.best_run_index = row.run.index;
    }
    ++group.with_metric;
    samples[it - groups.begin()].push_back(v);
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& s = samples[i];
    if (s.empty()) continue;
    double sum = 0;
    for (double v : s) sum += v;
    groups[i].mean = sum / static_cast<double>(s.size());
    double var = 0;
    for (double v : s) var += (v - groups[i].mean) * (v - groups[i].mean);
    groups[i].stddev = s.size() > 1 ? std::sqrt(var / static_cast<double>(s.size() - 1)) : 0;
  }
  return groups;
}

}  // namespace stylesweep
