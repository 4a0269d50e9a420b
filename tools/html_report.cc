#include "tools/html_report.h"

#include <algorithm>
#include <set>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/evaluation.h"
#include "nlohmann/json.hpp"
#include "tools/run_query.h"

namespace stylesweep {
namespace {

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Text(const std::string& key, const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if ((key == "content" || key == "style") && v.is_string()) {
    return std::filesystem::path(v.get<std::string>()).filename().string();
  }
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return Number(v.get<double>());
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : v) parts.push_back(Text(key, item));
    return absl::StrJoin(parts, ", ");
  }
  return v.dump();
}

// A PNG or JPEG under the artifacts directory as a data: URI (base64, so
// nothing in it can end the attribute it is written in).
absl::StatusOr<std::string> DataUri(const ArtifactReader& read_artifact, const std::string& ref) {
  if (ref.empty() || !read_artifact) return absl::NotFoundError("no image");
  auto bytes = read_artifact(ref);
  if (!bytes.ok()) return bytes.status();
  const bool jpeg = bytes->size() > 2 && static_cast<unsigned char>((*bytes)[0]) == 0xFF &&
                    static_cast<unsigned char>((*bytes)[1]) == 0xD8;
  return absl::StrCat("data:image/", jpeg ? "jpeg" : "png", ";base64,", absl::Base64Escape(*bytes));
}

// An <img> with the PNG or JPEG inlined, or a placeholder saying why not.
std::string Img(const ArtifactReader& read_artifact, const std::string& ref, const std::string& alt,
                const char* css_class) {
  auto uri = DataUri(read_artifact, ref);
  if (!uri.ok()) {
    return absl::StrCat("<div class=\"missing ", css_class, "\">", Escape(std::string(uri.status().message())),
                        "</div>");
  }
  return absl::StrCat("<img class=\"", css_class, "\" alt=\"", Escape(alt), "\" src=\"", *uri, "\">");
}

std::string RunLabel(const RunRow& row, const std::vector<std::string>& varying) {
  std::vector<std::string> parts;
  for (const auto& key : varying) parts.push_back(absl::StrCat(key, " = ", Text(key, row.params[key])));
  return absl::StrJoin(parts, "; ");
}

// The run's state, and for a diverged run a badge saying where it diverged.
std::string StateBadges(const RunRow& row) {
  const std::string state(RunStateName(row.run.state));
  return absl::StrCat("<span class=\"state ", state, "\">", state, "</span>",
                      row.diverged() ? absl::StrCat(" <span class=\"badge diverged\">diverged at step ",
                                                    row.run.diverged_step, "</span>")
                                     : "");
}

std::string Card(const HtmlReportData& data, const RunRow& row, const std::vector<std::string>& varying, bool best) {
  // A diverged run's losses, evaluation and image are its last finite ones.
  std::string loss = row.has_losses() ? absl::StrCat(row.diverged() ? "last finite loss " : "loss ",
                                                     Number(row.run.total_loss))
                                      : "no losses";
  if (row.has_eval()) {
    loss = absl::StrCat(row.diverged() ? "last finite " : "", "eval/score ", Number(row.run.eval.score()), ", ",
                        row.has_losses() ? absl::StrCat("loss ", Number(row.run.total_loss)) : "no losses");
  }
  return absl::StrCat("<figure class=\"card", best ? " best" : "", row.diverged() ? " diverged" : "",
                      "\" data-run=\"", row.run.index, "\">",
                      Img(data.read_artifact, row.run.final_snapshot,
                          absl::StrCat("run ", row.run.index, row.diverged() ? ", its last finite image" : ""), "thumb"),
                      "<figcaption><b>#", row.run.index, "</b> ", Escape(RunLabel(row, varying)), "<br>",
                      Escape(loss), " ", StateBadges(row),
                      row.run.error.empty() ? "" : absl::StrCat("<br><small>", Escape(row.run.error), "</small>"),
                      "</figcaption></figure>");
}

struct Curve {
  const std::vector<MetricRow>* metrics;
  std::string title;
  bool best = false;
};

// Loss curves: one polyline per run on a log-scale y axis, the best drawn
// last so that it is on top.
std::string LossChart(std::vector<Curve> curves) {
  double min_loss = std::numeric_limits<double>::max(), max_loss = 0;
  int max_step = 1;
  for (const Curve& curve : curves) {
    for (const MetricRow& m : *curve.metrics) {
      if (m.total > 0) {
        min_loss = std::min(min_loss, m.total);
        max_loss = std::max(max_loss, m.total);
      }
      max_step = std::max(max_step, m.step);
    }
  }
  if (max_loss <= 0) return "<p>No losses reported yet.</p>";
  const double lo = std::floor(std::log10(min_loss)), hi = std::max(lo + 1, std::ceil(std::log10(max_loss)));
  const double width = 760, height = 320, left = 60, bottom = 30, top = 10, right = 10;
  auto x = [&](int step) { return left + (width - left - right) * step / max_step; };
  auto y = [&](double v) { return top + (height - top - bottom) * (hi - std::log10(v)) / (hi - lo); };

  std::string svg = absl::StrCat("<svg class=\"chart\" viewBox=\"0 0 ", width, " ", height,
                                 "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"loss curves\">");
  for (double e = lo; e <= hi; e += 1) {
    const double yy = y(std::pow(10, e));
    absl::StrAppend(&svg, "<line x1=\"", left, "\" x2=\"", width - right, "\" y1=\"", yy, "\" y2=\"", yy,
                    "\" class=\"grid\"/><text x=\"", left - 6, "\" y=\"", yy + 4, "\" class=\"axis\" "
                    "text-anchor=\"end\">1e", static_cast<int>(e), "</text>");
  }
  absl::StrAppend(&svg, "<text x=\"", width - right, "\" y=\"", height - 8, "\" class=\"axis\" text-anchor=\"end\">step ",
                  max_step, "</text><text x=\"", left, "\" y=\"", height - 8, "\" class=\"axis\">0</text>");
  std::stable_partition(curves.begin(), curves.end(), [](const Curve& c) { return !c.best; });
  for (const Curve& curve : curves) {
    if (curve.metrics->empty()) continue;
    std::string points;
    for (const MetricRow& m : *curve.metrics) {
      if (m.total > 0) absl::StrAppend(&points, Number(x(m.step)), ",", Number(y(m.total)), " ");
    }
    absl::StrAppend(&svg, "<polyline class=\"", curve.best ? "curve best" : "curve", "\" points=\"", points,
                    "\"><title>", Escape(curve.title), "</title></polyline>");
  }
  svg += "</svg>";
  return svg;
}

// One axis of the scatter: linear, or logarithmic when the values span more
// than two decades (and are all positive). Maps a value to [0, 1].
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;  // the domain (log: exponents of 10)
  std::vector<double> ticks;

  static Axis For(double min, double max) {
    Axis axis;
    if (min > 0 && max / min > 100) {
      axis.log = true;
      axis.lo = std::floor(std::log10(min));
      axis.hi = std::ceil(std::log10(max));
      for (double e = axis.lo; e <= axis.hi; e += 1) axis.ticks.push_back(std::pow(10, e));
      return axis;
    }
    // A margin, so that no point sits on the frame; one value gets a range
    // around it. Not below 0 for values that are not.
    const double pad = max > min ? (max - min) * 0.05 : (min != 0 ? std::abs(min) * 0.5 : 0.5);
    min = min >= 0 ? std::max(0.0, min - pad) : min - pad;
    max += pad;
    // 1, 2 or 5 times a power of ten, about four steps across.
    const double raw = (max - min) / 4;
    const double power = std::pow(10, std::floor(std::log10(raw)));
    double step = power;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
      step = m * power;
      if (step >= raw) break;
    }
    axis.lo = std::floor(min / step) * step;
    axis.hi = std::ceil(max / step) * step;
    if (axis.hi <= axis.lo) axis.hi = axis.lo + step;
    for (double t = axis.lo; t <= axis.hi + step / 2; t += step) axis.ticks.push_back(std::abs(t) < step / 1e6 ? 0 : t);
    return axis;
  }

  double Fraction(double v) const {
    const double x = log ? std::log10(std::max(v, std::pow(10, lo))) : v;
    return (x - lo) / (hi - lo);
  }
};

// eval/content across, eval/style up: one point per run with an evaluation
// that did not diverge, each a link to the run's row in the table of runs
// with the run's final image shown on hover (CSS only, no script), the points
// of the Pareto front highlighted and joined in order of eval/content, the
// best run by eval/score ringed, and a legend.
std::string ParetoScatter(const HtmlReportData& data, const std::vector<RunRow>& rows,
                          const std::vector<std::string>& varying, int64_t best_id) {
  std::vector<const RunRow*> points;
  for (const RunRow& row : rows) {
    if (IsParetoCandidate(row)) points.push_back(&row);
  }
  if (points.empty()) return "<p class=\"meta\">No run with an evaluation that did not diverge.</p>";
  std::set<int64_t> front_ids;
  std::vector<const RunRow*> front;
  for (size_t i : ParetoFrontRows(rows)) {
    front_ids.insert(rows[i].run.id);
    front.push_back(&rows[i]);
  }
  std::stable_sort(front.begin(), front.end(), [](const RunRow* a, const RunRow* b) {
    return a->run.eval.content < b->run.eval.content ||
           (a->run.eval.content == b->run.eval.content && a->run.eval.style > b->run.eval.style);
  });
  double x_min = std::numeric_limits<double>::max(), x_max = std::numeric_limits<double>::lowest();
  double y_min = x_min, y_max = x_max;
  for (const RunRow* row : points) {
    x_min = std::min(x_min, row->run.eval.content);
    x_max = std::max(x_max, row->run.eval.content);
    y_min = std::min(y_min, row->run.eval.style);
    y_max = std::max(y_max, row->run.eval.style);
  }
  const Axis x_axis = Axis::For(x_min, x_max), y_axis = Axis::For(y_min, y_max);
  const double width = 640, height = 440, left = 64, right = 16, top = 12, bottom = 64;
  const double thumb = 96;
  auto x = [&](double v) { return left + (width - left - right) * x_axis.Fraction(v); };
  auto y = [&](double v) { return height - bottom - (height - top - bottom) * y_axis.Fraction(v); };

  std::string svg = absl::StrCat("<svg class=\"scatter\" viewBox=\"0 0 ", width, " ", height,
                                 "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
                                 "aria-label=\"eval/style against eval/content, one point per run\">");
  for (double t : x_axis.ticks) {
    const double xx = x(t);
    absl::StrAppend(&svg, "<line x1=\"", Number(xx), "\" x2=\"", Number(xx), "\" y1=\"", top, "\" y2=\"",
                    height - bottom, "\" class=\"grid\"/><text x=\"", Number(xx), "\" y=\"", height - bottom + 14,
                    "\" class=\"axis\" text-anchor=\"middle\">", Number(t), "</text>");
  }
  for (double t : y_axis.ticks) {
    const double yy = y(t);
    absl::StrAppend(&svg, "<line x1=\"", left, "\" x2=\"", width - right, "\" y1=\"", Number(yy), "\" y2=\"",
                    Number(yy), "\" class=\"grid\"/><text x=\"", left - 6, "\" y=\"", Number(yy + 4),
                    "\" class=\"axis\" text-anchor=\"end\">", Number(t), "</text>");
  }
  absl::StrAppend(&svg, "<text x=\"", left + (width - left - right) / 2, "\" y=\"", height - bottom + 32,
                  "\" class=\"axis label\" text-anchor=\"middle\">eval/content", x_axis.log ? " (log scale)" : "",
                  ": lower keeps more of the content</text>");
  absl::StrAppend(&svg, "<text transform=\"translate(14 ", top + (height - top - bottom) / 2,
                  ") rotate(-90)\" class=\"axis label\" text-anchor=\"middle\">eval/style",
                  y_axis.log ? " (log scale)" : "", ": lower takes more of the style</text>");

  // The front first, so that its points are drawn over it.
  std::string front_points;
  for (const RunRow* row : front) {
    absl::StrAppend(&front_points, front_points.empty() ? "" : " ", Number(x(row->run.eval.content)), ",",
                    Number(y(row->run.eval.style)));
  }
  absl::StrAppend(&svg, "<polyline class=\"front\" points=\"", front_points, "\"/>");

  for (const RunRow* row : points) {
    const double cx = x(row->run.eval.content), cy = y(row->run.eval.style);
    const bool on_front = front_ids.count(row->run.id) != 0;
    const bool best = row->run.id == best_id;
    const std::string label = RunLabel(*row, varying);
    absl::StrAppend(&svg, "<a href=\"#run-", row->run.index, "\" class=\"pt", on_front ? " front" : "",
                    best ? " best" : "", "\" data-run=\"", row->run.index, "\"><title>",
                    Escape(absl::StrCat("#", row->run.index, label.empty() ? "" : " ", label, ": eval/style ",
                                        Number(row->run.eval.style), ", eval/content ", Number(row->run.eval.content),
                                        ", eval/score ", Number(row->run.eval.score()),
                                        on_front ? " (on the Pareto front)" : "")),
                    "</title><circle cx=\"", Number(cx), "\" cy=\"", Number(cy), "\" r=\"",
                    on_front ? 6 : 4.5, "\"/>");
    // The run's image beside the point, on the side with room for it.
    if (auto uri = DataUri(data.read_artifact, row->run.final_snapshot); uri.ok()) {
      const double ix = cx + 10 + thumb <= width ? cx + 10 : cx - 10 - thumb;
      const double iy = std::clamp(cy - thumb / 2, 0.0, height - thumb);
      absl::StrAppend(&svg, "<image class=\"hover\" href=\"", *uri, "\" x=\"", Number(ix), "\" y=\"", Number(iy),
                      "\" width=\"", thumb, "\" height=\"", thumb, "\" preserveAspectRatio=\"xMidYMid meet\"/>");
    }
    svg += "</a>";
  }

  // The legend, in a row below the axis label, clear of every point.
  const double lx = 24, ly = height - 14;
  absl::StrAppend(&svg, "<g class=\"legend\">",
                  "<circle class=\"key\" cx=\"", lx, "\" cy=\"", ly - 4, "\" r=\"4.5\"/><text x=\"", lx + 10,
                  "\" y=\"", ly, "\" class=\"axis\">a run (hover: its image)</text>",
                  "<circle class=\"key front\" cx=\"", lx + 165, "\" cy=\"", ly - 4, "\" r=\"6\"/><text x=\"",
                  lx + 175, "\" y=\"", ly, "\" class=\"axis\">on the Pareto front</text>",
                  "<line class=\"key front\" x1=\"", lx + 290, "\" x2=\"", lx + 310, "\" y1=\"", ly - 4,
                  "\" y2=\"", ly - 4, "\"/><text x=\"", lx + 316, "\" y=\"", ly,
                  "\" class=\"axis\">the front, by eval/content</text>");
  if (best_id >= 0) {
    absl::StrAppend(&svg, "<circle class=\"key best\" cx=\"", lx + 470, "\" cy=\"", ly - 4,
                    "\" r=\"5\"/><text x=\"", lx + 480, "\" y=\"", ly,
                    "\" class=\"axis\">the best by eval/score</text>");
  }
  svg += "</g></svg>";
  return svg;
}

constexpr char kStyle[] = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #666; }
.inputs { display: flex; gap: 16px; } .inputs figure { margin: 0; }
.input { max-height: 200px; border-radius: 4px; }
.sheet { display: flex; flex-wrap: wrap; gap: 12px; }
.card { margin: 0; width: 220px; } .card.best { outline: 3px solid #d62728; outline-offset: 2px; }
.thumb { width: 220px; border-radius: 4px; display: block; }
.missing { width: 220px; height: 120px; background: #eee; color: #888; display: flex; align-items: center;
           justify-content: center; text-align: center; font-size: 12px; border-radius: 4px; }
figcaption { font-size: 12px; margin-top: 4px; }
table.grid td, table.grid th { vertical-align: top; padding: 4px; }
table.runs { border-collapse: collapse; font-size: 12px; }
table.runs td, table.runs th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }
.state { font-size: 11px; padding: 0 4px; border-radius: 3px; background: #eee; }
.state.SUCCEEDED { background: #d4f4d4; } .state.FAILED, .state.LOST { background: #f8d0d0; }
.badge.diverged { font-size: 11px; padding: 0 4px; border-radius: 3px; background: #7a0010; color: #fff; }
.card.diverged .thumb { opacity: .6; }
.chart { width: 100%; max-width: 760px; } .grid { stroke: #e5e5e5; } .axis { font-size: 11px; fill: #666; }
.curve { fill: none; stroke: #1f77b4; stroke-opacity: .45; stroke-width: 1.2; }
.curve.best { stroke: #d62728; stroke-opacity: 1; stroke-width: 2.5; }
.steps { display: flex; gap: 8px; flex-wrap: wrap; } .steps figure { margin: 0; width: 140px; }
.steps .thumb { width: 140px; }
.scatter { width: 100%; max-width: 640px; }
.scatter .pt circle, .scatter circle.key { fill: #1f77b4; fill-opacity: .75; }
.scatter .pt.front circle, .scatter circle.key.front { fill: #ff7f0e; fill-opacity: 1; stroke: #333; stroke-width: 1; }
.scatter .pt.best circle, .scatter circle.key.best { stroke: #d62728; stroke-width: 3; }
.scatter circle.key.best { fill: #fff; }
.scatter polyline.front, .scatter line.key.front { fill: none; stroke: #ff7f0e; stroke-width: 1.5;
                                                   stroke-dasharray: 5 3; }
.scatter .hover { visibility: hidden; pointer-events: none; }
.scatter .pt:hover .hover, .scatter .pt:focus .hover { visibility: visible; }
.scatter .label { font-size: 12px; fill: #444; }
table.runs tr:target { background: #fff3c4; }
)";

}  // namespace

std::string RenderHtmlReport(const HtmlReportData& data) {
  const SweepView& view = data.view;
  const nlohmann::json spec = nlohmann::json::parse(view.sweep.spec_json, nullptr, false);
  const nlohmann::json images =
      spec.is_object() && spec.contains("images") ? spec["images"] : nlohmann::json::object();
  std::vector<RunRow> rows = MakeRunRows(view.runs, images);

  std::vector<std::string> varying;
  if (!rows.empty()) {
    for (const auto& [key, value] : rows[0].params.items()) {
      for (const RunRow& row : rows) {
        if (row.params[key] != value) {
          varying.push_back(key);
          break;
        }
      }
    }
  }
  // By eval/score when the runs have evaluations (their losses are weighted
  // by each run's own weights and rank nothing across the sweep), else by
  // loss/total; never a diverged run, whatever its last finite values.
  std::string best_metric = DefaultMetric(rows);
  const RunRow* best = BestRow(rows, best_metric);
  if (best == nullptr && best_metric != "loss/total") {
    best_metric = "loss/total";
    best = BestRow(rows, best_metric);
  }
  const int64_t best_id = best ? best->run.id : -1;
  const bool any_eval = std::any_of(rows.begin(), rows.end(), [](const RunRow& row) { return row.has_eval(); });

  // The sweep's counts, also when the report shows a selection of its runs.
  const std::map<std::string, int> counts = view.counts.empty() ? CountByState(view.runs) : view.counts;
  int total_runs = 0;
  for (const auto& [state, n] : counts) total_runs += n;

  std::string html = absl::StrCat("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>",
                                  Escape(view.sweep.name), " - stylesweep report</title><style>", kStyle,
                                  "</style></head><body>");
  absl::StrAppend(&html, "<h1>", Escape(view.sweep.name), "</h1><p class=\"meta\">sweep ", view.sweep.id, " · ",
                  Escape(view.sweep.method), " · ", Escape(view.sweep.source), " · ",
                  Escape(SweepCountsLine(view)),
                  rows.size() < static_cast<size_t>(total_runs) ? absl::StrCat(" · showing ", rows.size()) : "",
                  "</p>");

  // Inputs: the content image and every style image, by their blob ids.
  // Content images first, each caption saying which role the image plays.
  std::set<std::string> content_ids;
  for (const RunRecord& run : view.runs) {
    const nlohmann::json params = nlohmann::json::parse(run.params_json, nullptr, false);
    if (params.is_object() && params.contains("content") && params["content"].is_string()) {
      content_ids.insert(params["content"].get<std::string>());
    }
  }
  absl::StrAppend(&html, "<h2>Inputs</h2><div class=\"inputs\">");
  for (const bool content : {true, false}) {
    for (const auto& [id, name] : images.items()) {
      if ((content_ids.count(id) != 0) != content) continue;
      const std::string label = name.is_string() ? name.get<std::string>() : id;
      absl::StrAppend(&html, "<figure>", Img(data.read_artifact, id, label, "input"), "<figcaption>",
                      content ? "content: " : "style: ", Escape(label), "</figcaption></figure>");
    }
  }
  html += "</div>";

  absl::StrAppend(&html, "<h2>Results</h2>");
  if (varying.size() == 2) {
    // A grid: the parameter that varies slowest over the runs' order (the
    // sweep file's first, for a grid sweep) down, the other across.
    std::vector<const RunRow*> by_index;
    for (const RunRow& row : rows) by_index.push_back(&row);
    std::sort(by_index.begin(), by_index.end(),
              [](const RunRow* a, const RunRow* b) { return a->run.index < b->run.index; });
    auto changes = [&](const std::string& key) {
      int n = 0;
      for (size_t i = 1; i < by_index.size(); ++i) n += by_index[i]->params[key] != by_index[i - 1]->params[key];
      return n;
    };
    if (changes(varying[1]) < changes(varying[0])) std::swap(varying[0], varying[1]);
    std::vector<nlohmann::json> row_values, col_values;
    for (const RunRow& row : rows) {
      if (std::find(row_values.begin(), row_values.end(), row.params[varying[0]]) == row_values.end()) {
        row_values.push_back(row.params[varying[0]]);
      }
      if (std::find(col_values.begin(), col_values.end(), row.params[varying[1]]) == col_values.end()) {
        col_values.push_back(row.params[varying[1]]);
      }
    }
    absl::StrAppend(&html, "<table class=\"grid\"><tr><th>", Escape(varying[0]), " \\ ", Escape(varying[1]), "</th>");
    for (const auto& c : col_values) absl::StrAppend(&html, "<th>", Escape(Text(varying[1], c)), "</th>");
    html += "</tr>";
    for (const auto& r : row_values) {
      absl::StrAppend(&html, "<tr><th>", Escape(Text(varying[0], r)), "</th>");
      for (const auto& c : col_values) {
        html += "<td>";
        for (const RunRow& row : rows) {
          if (row.params[varying[0]] == r && row.params[varying[1]] == c) {
            html += Card(data, row, {}, row.run.id == best_id);
          }
        }
        html += "</td>";
      }
      html += "</tr>";
    }
    html += "</table>";
  } else {
    html += "<div class=\"sheet\">";
    for (const RunRow& row : rows) html += Card(data, row, varying, row.run.id == best_id);
    html += "</div>";
  }

  if (any_eval) {
    absl::StrAppend(&html, "<h2>Style and content</h2><p class=\"meta\">each run with an evaluation (",
                    "diverged runs left out): eval/content across, eval/style up, lower better on both and ",
                    "comparable across runs whatever their weights; the Pareto front joins the runs no other run ",
                    "beats on both. Hover a point for its image; click it for its row.</p>",
                    ParetoScatter(data, rows, varying, best != nullptr && best_metric == "eval/score" ? best_id : -1));
  }

  std::vector<Curve> curves;
  for (const RunRow& row : rows) {
    auto it = data.metrics.find(row.run.id);
    if (it == data.metrics.end()) continue;
    curves.push_back({&it->second, absl::StrCat("#", row.run.index, " ", RunLabel(row, varying)), row.run.id == best_id});
  }
  absl::StrAppend(&html, "<h2>Loss curves</h2><p class=\"meta\">total loss per step, log scale",
                  best ? absl::StrCat("; best run #", best->run.index,
                                      best_metric == "loss/total" ? "" : absl::StrCat(" (by ", best_metric, ")"),
                                      " in red")
                       : "",
                  "</p>", LossChart(curves));

  // Snapshots over steps for the three best runs, by the metric the best
  // run is best by.
  std::vector<const RunRow*> ranked;
  for (const RunRow& row : rows) {
    if (row.run.state == RunState::kSucceeded && !row.diverged() && row.Field(best_metric).is_number()) {
      ranked.push_back(&row);
    }
  }
  const bool maximize = HigherIsBetter(best_metric);
  std::stable_sort(ranked.begin(), ranked.end(), [&best_metric, maximize](const RunRow* a, const RunRow* b) {
    const double x = a->Field(best_metric).get<double>(), y = b->Field(best_metric).get<double>();
    return maximize ? x > y : x < y;
  });
  if (ranked.size() > 3) ranked.resize(3);
  if (!ranked.empty()) absl::StrAppend(&html, "<h2>Snapshots of the best runs</h2><p class=\"meta\">by ", best_metric, "</p>");
  for (const RunRow* row : ranked) {
    absl::StrAppend(&html, "<h3>#", row->run.index, " ", Escape(RunLabel(*row, varying)), "</h3><div class=\"steps\">");
    auto it = data.snapshots.find(row->run.id);
    if (it != data.snapshots.end()) {
      for (const SnapshotRecord& s : it->second) {
        if (s.attempt != row->run.attempt) continue;
        absl::StrAppend(&html, "<figure>", Img(data.read_artifact, s.path, absl::StrCat("step ", s.step), "thumb"),
                        "<figcaption>step ", s.step, "</figcaption></figure>");
      }
    }
    html += "</div>";
  }

  // The table of runs; each row is the target of its point in the scatter.
  absl::StrAppend(&html, "<h2>Runs</h2><table class=\"runs\"><tr><th>run</th>");
  for (const auto& key : varying) absl::StrAppend(&html, "<th>", Escape(key), "</th>");
  html += "<th>state</th>";
  if (any_eval) {
    for (const std::string& name : ShownEvalMetrics()) absl::StrAppend(&html, "<th>", name, "</th>");
  }
  html += "<th>step</th><th>loss/total</th><th>loss/style</th><th>loss/content</th><th>loss/tv</th><th>time</th></tr>";
  for (const RunRow& row : rows) {
    absl::StrAppend(&html, "<tr id=\"run-", row.run.index, "\"><td>#", row.run.index, "</td>");
    for (const auto& key : varying) absl::StrAppend(&html, "<td>", Escape(Text(key, row.params[key])), "</td>");
    absl::StrAppend(&html, "<td>", StateBadges(row), "</td>");
    if (any_eval) {
      for (const std::string& name : ShownEvalMetrics()) absl::StrAppend(&html, "<td>", MetricCell(row, name), "</td>");
    }
    if (row.has_losses()) {
      absl::StrAppend(&html, "<td>", row.run.last_step, "</td><td>", Number(row.run.total_loss), "</td><td>",
                      Number(row.run.style_loss), "</td><td>", Number(row.run.content_loss), "</td><td>",
                      Number(row.run.tv_loss), "</td>");
    } else {
      html += "<td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>";
    }
    auto d = row.duration_s();
    absl::StrAppend(&html, "<td>", d ? absl::StrCat(Number(*d), " s") : "-", "</td></tr>");
  }
  html += "</table></body></html>\n";
  return html;
}

std::string RenderHtmlComparison(const Comparison& comparison, const CompareOptions& options) {
  const CompareSide* sides[] = {&comparison.a, &comparison.b};
  const std::string title = absl::StrCat(RunTitle(comparison.a), " vs ", RunTitle(comparison.b));
  std::string html = absl::StrCat("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>",
                                  Escape(title), " - stylesweep</title><style>", kStyle,
                                  ".pair { display: flex; gap: 16px; } .pair figure { margin: 0; width: 380px; }"
                                  ".pair .thumb { width: 380px; }</style></head><body><h1>",
                                  Escape(title), "</h1><div class=\"pair\">");
  for (const CompareSide* side : sides) {
    absl::StrAppend(&html, "<figure class=\"card\" data-run=\"", side->run.index, "\">",
                    Img(side->read_artifact, side->run.final_snapshot, RunTitle(*side), "thumb"), "<figcaption>",
                    Escape(RunTitle(*side)),
                    side->run.diverged() ? absl::StrCat(" <span class=\"badge diverged\">diverged at step ",
                                                        side->run.diverged_step, "</span>; its last finite image")
                                         : "",
                    "</figcaption></figure>");
  }
  html += "</div><h2>Parameters and results</h2><table class=\"runs\"><tr><th></th>";
  for (const CompareSide* side : sides) absl::StrAppend(&html, "<th>#", side->run.index, "</th>");
  const RunRecord& a = comparison.a.run;
  const RunRecord& b = comparison.b.run;
  const bool evaluated = a.has_eval() || b.has_eval();
  html += evaluated ? "<th>ratio</th><th>better</th></tr>" : "<th>ratio</th></tr>";
  for (const ComparisonLine& line : ComparisonLines(comparison, options)) {
    absl::StrAppend(&html, "<tr", line.parameter ? " class=\"param\"" : "", "><th>", Escape(line.field),
                    "</th><td>", Escape(line.a), "</td><td>", Escape(line.b), "</td><td>", Escape(line.ratio),
                    "</td>", evaluated ? absl::StrCat("<td>", Escape(line.better), "</td>") : "", "</tr>");
  }
  html += "</table>";
  bool a_better = false, b_better = false;
  std::string which;
  if (a.has_eval() && b.has_eval()) {
    // The better by eval/score, comparable whatever the runs' weights.
    const RunRow row_a = MakeRunRows({a}, nlohmann::json::object()).front();
    const RunRow row_b = MakeRunRows({b}, nlohmann::json::object()).front();
    const Better better = BetterBy(row_a, row_b, "eval/score");
    a_better = better == Better::kFirst || better == Better::kEqual;
    b_better = better == Better::kSecond;
    which = "the better by eval/score in red";
  } else {
    // Runs without an evaluation: the lower total loss of the runs with
    // losses that did not diverge; none when neither has such losses.
    auto ranks = [](const RunRecord& run) { return run.last_step >= 0 && !run.diverged(); };
    a_better = ranks(a) && (!ranks(b) || a.total_loss <= b.total_loss);
    b_better = ranks(b) && !a_better;
    which = "the lower in red";
  }
  std::vector<Curve> curves = {{&comparison.a.metrics, RunTitle(comparison.a), a_better},
                               {&comparison.b.metrics, RunTitle(comparison.b), b_better}};
  absl::StrAppend(&html, "<h2>Loss curves</h2><p class=\"meta\">total loss per step, log scale; ", which,
                  a.diverged() || b.diverged()
                      ? (a.has_eval() && b.has_eval() ? " (a diverged run is never the better)"
                                                      : " (a diverged run is never the lower)")
                      : "",
                  "</p>",
                  LossChart(curves), "</body></html>\n");
  return html;
}

}  // namespace stylesweep
