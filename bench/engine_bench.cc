// engine_bench: the style engine's speed beside the same loop in PyTorch/
// Python (bench/peer_style_loop.py), and what its options buy.
//
//   engine_bench [--threads N] [--quick] [--rounds 3] [--python /usr/bin/python3]
//                [--loss-steps 200] [--quality-steps 1000] [--no-table]
//
// Prints one table of the median seconds per step, over --rounds interleaved
// rounds of each, at 128, 256 and 512 px (long side;
// configs/images/cat.png styled by starry_night.jpg) for the engine in fp32
// and bf16 and for the Python peer, their ratio, the achieved GFLOP/s by
// NOTES.md's cost model, a measured convolution peak and peak RSS; then the
// bf16 vs fp32 loss after 200 steps at 256 px; what evaluation
// (common/evaluation.h) costs beside a default run's steps at 512 px; and how
// many steps and seconds Adam, L-BFGS and multires need to reach a given
// evaluation quality at 128 px. Every figure uses a seeded random VGG19 (no
// weights file needed). --quick cuts the step counts for a smoke test;
// --loss-steps and --quality-steps set the two long measurements' lengths;
// --no-table skips the table.

#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/cpu_memory.h"
#include "agent/engine/engine.h"
#include "agent/engine/style_transfer.h"
#include "agent/engine/vgg19.h"
#include "agent/engine/weights.h"
#include "nlohmann/json.hpp"

namespace stylesweep {
namespace {

const std::string kSourceDir = STYLESWEEP_SOURCE_DIR;
const std::string kContent = kSourceDir + "/configs/images/cat.png";
const std::string kStyle = kSourceDir + "/configs/images/starry_night.jpg";

// Peak resident memory since the last ResetPeakRss() (VmHWM; Linux resets
// it when "5" is written to /proc/self/clear_refs).
double PeakRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

RunParams BenchParams(int size, int steps, const std::string& precision) {
  RunParams params;
  params.content = kContent;
  params.style = {kStyle};
  params.image_size = size;
  params.steps = steps;
  params.snapshot_every = 0;
  params.precision = precision;
  if (absl::Status s = params.Validate(); !s.ok()) {
    std::fprintf(stderr, "bad bench parameters: %s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
  return params;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct RunResult {
  double step_seconds = 0;            // mean over steps 2.. (step 1 warms up)
  std::vector<double> step_seconds_each;  // steps 2..
  double final_total = 0;
  int width = 0, height = 0;
};

RunResult RunEngine(Vgg19Features& net, const RunParams& params) {
  StyleTransferOptions options;
  options.normalise_by_targets = true;
  std::vector<double> seconds;
  RunResult result;
  EngineCallbacks callbacks;
  callbacks.on_step = [&](const StepMetrics& m) {
    if (m.step >= 2) seconds.push_back(m.step_seconds);
    result.final_total = m.total;
  };
  torch::Tensor image;
  absl::Status status = RunStyleTransfer(net, params, options, callbacks, &image);
  if (!status.ok()) {
    std::fprintf(stderr, "engine run failed: %s\n", std::string(status.message()).c_str());
    std::exit(1);
  }
  for (double s : seconds) result.step_seconds += s / seconds.size();
  result.step_seconds_each = seconds;
  ReleaseCachedCpuMemory();  // as the engine does after each run
  result.height = static_cast<int>(image.size(2));
  result.width = static_cast<int>(image.size(3));
  return result;
}

struct PeerResult {
  double step_seconds = 0, peak_rss_mb = 0;
  std::vector<double> step_seconds_each;
};

PeerResult RunPeer(const std::string& python, int size, int steps, int threads) {
  const std::string command = python + " " + kSourceDir + "/bench/peer_style_loop.py " + kContent + " " + kStyle +
                              " --size " + std::to_string(size) + " --steps " + std::to_string(steps) +
                              " --threads " + std::to_string(threads);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string out;
  char buffer[4096];
  while (pipe && fgets(buffer, sizeof buffer, pipe.get()) != nullptr) out += buffer;
  try {
    const nlohmann::json j = nlohmann::json::parse(out);
    return {j.at("step_seconds").get<double>(), j.at("peak_rss_mb").get<double>(),
            j.at("step_seconds_each").get<std::vector<double>>()};
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the Python peer failed (%s): %s\n", command.c_str(), out.c_str());
    return {};
  }
}

// NOTES.md's cost model: forward to relu5_2 ≈ 0.74 MFLOP per pixel, a step
// twice that, plus the Gram products (2·C²·P forward, twice that backward)
// of the five style layers.
double StepFlops(int width, int height) {
  const double pixels = static_cast<double>(width) * height;
  double flops = 2 * 0.74e6 * pixels;
  const int channels[] = {64, 128, 256, 512, 512};
  for (int level = 0; level < 5; ++level) {
    const double positions = pixels / std::pow(4.0, level);
    flops += 3 * 2.0 * channels[level] * channels[level] * positions;
  }
  return flops;
}

// GFLOP/s of one 3x3, 256 -> 256 channel convolution on 64 x 64 (channels-last).
double ConvPeakGflops(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({1, 256, 64, 64}).to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor w = torch::rand({256, 256, 3, 3}).to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
  for (int i = 0; i < 3; ++i) torch::conv2d(x, w, {}, 1, 1);
  const int reps = 20;
  const double start = Now();
  for (int i = 0; i < reps; ++i) torch::conv2d(x, w, {}, 1, 1);
  const double seconds = (Now() - start) / reps;
  return 2.0 * 9 * 256 * 256 * 64 * 64 / seconds / 1e9;
}

// Every row of one run, evaluated at step 0, the last step and wherever
// `evaluate_at` says.
std::vector<StepMetrics> RunRows(Vgg19Features& net, const RunParams& params,
                                 const std::function<bool(int)>& evaluate_at) {
  StyleTransferOptions options;
  options.normalise_by_targets = true;
  std::vector<StepMetrics> rows;
  EngineCallbacks callbacks;
  callbacks.on_step = [&rows](const StepMetrics& m) { rows.push_back(m); };
  callbacks.evaluate_at = evaluate_at;
  absl::Status status = RunStyleTransfer(net, params, options, callbacks);
  if (!status.ok()) {
    std::fprintf(stderr, "engine run failed: %s\n", std::string(status.message()).c_str());
    std::exit(1);
  }
  ReleaseCachedCpuMemory();
  return rows;
}

// Median seconds of a training step and of an evaluation at `size` px
// (eval_size `eval_size`), every step evaluated, over `steps` steps (the
// first update and the first evaluation warm up and are left out).
std::pair<double, double> StepAndEvaluationSeconds(Vgg19Features& net, int size, int eval_size, int steps) {
  RunParams params = BenchParams(size, steps, "fp32");
  params.eval_size = eval_size;
  std::vector<double> step_seconds, eval_seconds;
  for (const StepMetrics& m : RunRows(net, params, [](int) { return true; })) {
    if (m.step >= 2) step_seconds.push_back(m.step_seconds);
    if (m.step >= 1 && m.eval) eval_seconds.push_back(m.eval_seconds);
  }
  return {Median(step_seconds), Median(eval_seconds)};
}

// Where a run first meets a target: the step and the optimisation seconds
// (the sum of step_seconds, evaluations excluded) up to it.
struct Reached {
  int step = -1;
  double seconds = 0;
};

std::string Show(const Reached& r) {
  if (r.step < 0) return "-";
  char text[48];
  std::snprintf(text, sizeof text, "%d / %.1f s", r.step, r.seconds);
  return text;
}

// A run's course against the eval targets.
struct Course {
  std::string name;
  Reached score_tight, score_loose, style_tight, style_loose;
  Evaluation final_eval;
  double final_total = 0, seconds = 0, eval_seconds = 0;
  Reached adam_loss;  // where the total loss first reaches Adam's final total (last stage only)
};

Course Follow(const std::string& name, const std::vector<StepMetrics>& rows, double score_tight, double score_loose,
              double style_tight, double style_loose, double adam_total, int final_stage_start) {
  Course c;
  c.name = name;
  double seconds = 0;
  auto meet = [&](Reached& r, bool met, int step) {
    if (r.step < 0 && met) r = {step, seconds};
  };
  for (const StepMetrics& m : rows) {
    seconds += m.step_seconds;
    c.eval_seconds += m.eval_seconds;
    if (m.eval) {
      meet(c.score_tight, m.eval->score() <= score_tight, m.step);
      meet(c.score_loose, m.eval->score() <= score_loose, m.step);
      meet(c.style_tight, m.eval->style_norm <= style_tight, m.step);
      meet(c.style_loose, m.eval->style_norm <= style_loose, m.step);
      c.final_eval = *m.eval;
    }
    if (m.step >= final_stage_start) meet(c.adam_loss, m.total <= adam_total, m.step);
    c.final_total = m.total;
  }
  c.seconds = seconds;
  return c;
}

int Main(int argc, char** argv) {
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  bool quick = false, table = true;
  int rounds = 3;
  int loss_steps = 200, quality_steps = 1000;
  std::string python = "/usr/bin/python3";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      rounds = 1;
      loss_steps = 10;
      quality_steps = 20;
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--no-table") == 0) {
      table = false;
    } else if (std::strcmp(argv[i], "--loss-steps") == 0 && i + 1 < argc) {
      loss_steps = std::max(2, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--quality-steps") == 0 && i + 1 < argc) {
      quality_steps = std::max(4, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--python") == 0 && i + 1 < argc) {
      python = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: engine_bench [--threads N] [--quick] [--rounds N] [--python PATH] [--loss-steps N] "
                   "[--quality-steps N] [--no-table]\n");
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured, also in a pipe
  at::set_num_threads(threads);
  InstallCachingCpuAllocator();  // as the agent's engine does on CPU
  Vgg19Features net = RandomVgg19(0);

  std::printf("engine_bench: %d threads, seeded random VGG19, %s styled by %s\n", threads, "cat.png",
              "starry_night.jpg");
  if (table) {
    std::printf("conv peak (3x3 256->256 @ 64x64): fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n\n",
                ConvPeakGflops(torch::kFloat), ConvPeakGflops(torch::kBFloat16));
    std::printf("%-6s %-9s %10s %10s %10s %9s %9s %10s %10s %9s %9s\n", "size", "image", "fp32 s", "bf16 s",
                "python s", "fp32/py", "bf16/py", "fp32 GF/s", "bf16 GF/s", "fp32 MB", "py MB");
    std::vector<std::string> cache_lines;
    for (int size : {128, 256, 512}) {
      const int steps = quick ? 3 : (size == 512 ? 4 : 8);
      // Rounds of all three, interleaved, and the median step of each side:
      // on a shared machine load comes and goes, and this way it hits the
      // engine and the peer alike and a slow step does not move the figure.
      std::vector<double> fp32_steps, bf16_steps, peer_steps;
      RunResult fp32;
      double fp32_rss = 0, peer_rss = 0;
      for (int round = 0; round < rounds; ++round) {
        ResetPeakRss();
        fp32 = RunEngine(net, BenchParams(size, steps, "fp32"));
        fp32_rss = std::max(fp32_rss, PeakRssMb());
        const PeerResult peer = RunPeer(python, size, steps, threads);
        const RunResult bf16 = RunEngine(net, BenchParams(size, steps, "bf16"));
        peer_rss = std::max(peer_rss, peer.peak_rss_mb);
        fp32_steps.insert(fp32_steps.end(), fp32.step_seconds_each.begin(), fp32.step_seconds_each.end());
        bf16_steps.insert(bf16_steps.end(), bf16.step_seconds_each.begin(), bf16.step_seconds_each.end());
        peer_steps.insert(peer_steps.end(), peer.step_seconds_each.begin(), peer.step_seconds_each.end());
      }
      // How the block cache fared in one more fp32 run: fresh allocations
      // are what steps pay page faults for.
      const CpuMemoryStats cache_before = GetCpuMemoryStats();
      RunEngine(net, BenchParams(size, steps, "fp32"));
      const CpuMemoryStats cache_after = GetCpuMemoryStats();
      cache_lines.push_back(absl::StrCat(size, " px: ", cache_after.fresh - cache_before.fresh, " fresh and ",
                                         cache_after.reuses - cache_before.reuses, " reused large blocks over ",
                                         steps, " steps"));
      const double fp32_s = Median(fp32_steps), bf16_s = Median(bf16_steps), peer_s = Median(peer_steps);
      const double flops = StepFlops(fp32.width, fp32.height);
      std::printf("%-6d %4dx%-4d %10.4f %10.4f %10.4f %9.2f %9.2f %10.1f %10.1f %9.0f %9.0f\n", size, fp32.width,
                  fp32.height, fp32_s, bf16_s, peer_s, fp32_s / peer_s, bf16_s / peer_s, flops / fp32_s / 1e9,
                  flops / bf16_s / 1e9, fp32_rss, peer_rss);
      std::fflush(stdout);
    }
    std::printf("(fp32 MB, py MB: peak resident memory of an fp32 run, engine and Python process)\n");
    for (const std::string& line : cache_lines) std::printf("block cache, %s\n", line.c_str());
    std::printf("\n");
  }

  const int long_steps = loss_steps;
  const RunResult fp32 = RunEngine(net, BenchParams(256, long_steps, "fp32"));
  const RunResult bf16 = RunEngine(net, BenchParams(256, long_steps, "bf16"));
  std::printf("total loss after %d steps at 256 px: fp32 %.6g, bf16 %.6g (%+.2f%%)\n", long_steps, fp32.final_total,
              bf16.final_total, 100 * (bf16.final_total - fp32.final_total) / fp32.final_total);


  // What evaluation costs beside the steps of a default run (512 px, eval
  // size 256, 1000 steps, a snapshot every 100): it evaluates step 0, the
  // ten snapshots (the last one the last step), and with early termination
  // each rung besides; assume hyperband's min_iter 50, eta 3: rungs at 50,
  // 150 and 450, none a snapshot step.
  {
    const auto [step_s, eval_s] = StepAndEvaluationSeconds(net, 512, kDefaultEvalSize, quick ? 3 : 5);
    const int evaluations = 11, rungs = 3, default_steps = 1000;
    auto share = [&](int n) { return 100 * n * eval_s / (default_steps * step_s + n * eval_s); };
    std::printf("evaluation at 512 px (eval_size %d): %.3f s each, against %.3f s a step\n", kDefaultEvalSize,
                eval_s, step_s);
    std::printf("  %d per default run (%d steps, snapshot_every 100) = %.2f%% of its %.0f s;\n", evaluations,
                default_steps, share(evaluations), default_steps * step_s + evaluations * eval_s);
    std::printf("  %d with early termination (+%d rungs: min_iter 50, eta 3) = %.2f%%\n\n", evaluations + rungs, rungs,
                share(evaluations + rungs));
  }

  // Time to a given evaluation quality at 128 px. eval/* are comparable
  // across sizes, so multires counts from its first stage on; losses are
  // not, so "Adam's loss" counts in multires' last stage only. The
  // tutorial's weights, on a random network, smooth the image away from
  // both references (total variation dominates: eval/score rises from 0.5
  // and never comes back), which makes "time to quality" meaningless; so
  // style weighs as much as content here and total variation little.
  const int adam_steps = quality_steps;
  const int every = std::max(1, adam_steps / 100);
  auto evaluate_every = [every](int step) { return step % every == 0; };
  RunParams adam_params = BenchParams(128, adam_steps, "fp32");
  adam_params.eval_size = 128;
  adam_params.style_weight = 1e4;
  adam_params.content_weight = 1e4;
  adam_params.tv_weight = 0.01;
  const std::vector<StepMetrics> adam_rows = RunRows(net, adam_params, evaluate_every);
  const Evaluation& adam_end = *adam_rows.back().eval;
  const Evaluation& start = *adam_rows.front().eval;
  const double score_tight = adam_end.score(), score_loose = (start.score() + adam_end.score()) / 2;
  const double style_tight = adam_end.style_norm, style_loose = (start.style_norm + adam_end.style_norm) / 2;
  const double adam_total = adam_rows.back().total;

  RunParams lbfgs = adam_params;
  lbfgs.optimizer = "lbfgs";
  RunParams multires = adam_params;
  multires.multires_sizes = {64, 128};
  multires.multires_steps = {adam_steps / 2, adam_steps};
  multires.Validate().IgnoreError();
  std::vector<Course> courses;
  courses.push_back(Follow(absl::StrCat("adam ", adam_steps), adam_rows, score_tight, score_loose, style_tight,
                           style_loose, adam_total, 0));
  courses.push_back(Follow(absl::StrCat("lbfgs ", adam_steps), RunRows(net, lbfgs, evaluate_every), score_tight,
                           score_loose, style_tight, style_loose, adam_total, 0));
  courses.push_back(Follow(absl::StrCat("multires 64x", adam_steps / 2, "+128x", adam_steps),
                           RunRows(net, multires, evaluate_every), score_tight, score_loose, style_tight,
                           style_loose, adam_total, adam_steps / 2));

  std::printf("time to eval quality at 128 px (eval_size 128, evaluated every %d steps; style_weight 1e4, "
              "content_weight 1e4, tv_weight 0.01, defaults otherwise):\n",
              every);
  std::printf("  targets: eval/score <= %.4f (Adam after %d steps) and <= %.4f (halfway from step 0's %.4f);\n",
              score_tight, adam_steps, score_loose, start.score());
  std::printf("           eval/style_norm <= %.4f (Adam after %d steps) and <= %.4f (halfway from %.4f)\n",
              style_tight, adam_steps, style_loose, start.style_norm);
  std::printf("  cells: step / optimisation seconds (evaluations excluded) where a run first meets the target\n");
  std::printf("  %-24s %15s %15s %15s %15s %8s %8s %8s %11s %15s %8s %8s\n", "run", "score tight", "score loose",
              "style tight", "style loose", "score", "style_n", "content_n", "total loss", "Adam's loss",
              "run s", "eval s");
  for (const Course& c : courses) {
    std::printf("  %-24s %15s %15s %15s %15s %8.4f %8.4f %8.4f %11.5g %15s %8.1f %8.1f\n", c.name.c_str(),
                Show(c.score_tight).c_str(), Show(c.score_loose).c_str(), Show(c.style_tight).c_str(),
                Show(c.style_loose).c_str(), c.final_eval.score(), c.final_eval.style_norm,
                c.final_eval.content_norm, c.final_total, Show(c.adam_loss).c_str(), c.seconds, c.eval_seconds);
  }
  std::printf("  (Adam's loss: where the total loss first reaches Adam's final %.6g; multires in its 128 px stage)\n",
              adam_total);
  return 0;
}

}  // namespace
}  // namespace stylesweep

int main(int argc, char** argv) { return stylesweep::Main(argc, argv); }
