#include "tests/tools/report_fixture.h"

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/run_params.h"
#include "coordinator/store/store.h"
#include "nlohmann/json.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
#pragma GCC diagnostic pop

namespace stylesweep::testing {
namespace {

// A 16x8 PNG of one colour with a darker band, so each image is distinct.
std::string Png(unsigned char r, unsigned char g, unsigned char b) {
  constexpr int kWidth = 16, kHeight = 8;
  std::vector<unsigned char> pixels(kWidth * kHeight * 3);
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      unsigned char* p = &pixels[(y * kWidth + x) * 3];
      const int shade = y < kHeight / 2 ? 1 : 2;
      p[0] = r / shade, p[1] = g / shade, p[2] = b / shade;
    }
  }
  std::string png;
  stbi_write_png_to_func(
      [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<char*>(data), size); },
      &png, kWidth, kHeight, 3, pixels.data(), kWidth * 3);
  return png;
}

struct FixtureRun {
  RunState state;
  const char* agent;
  double scale;     // total loss at step s is 1000 * scale / (1 + s)
  int last_step;    // the last step reported (with a finite loss)
  const char* error;
  int diverged_step = -1;
};

}  // namespace

std::pair<int, Evaluation> FixtureEvaluation(int index) {
  // style, content, tv, style_norm, content_norm, tv_norm, ssim, color
  switch (index) {
    case 0: return {4, Evaluation{0.8, 0.05, 0.02, 0.8, 0.1, 0.9, 0.9, 0.2}};
    case 1: return {4, Evaluation{0.4, 0.12, 0.03, 0.4, 0.22, 0.8, 0.75, 0.15}};
    case 2: return {4, Evaluation{0.3, 0.3, 0.04, 0.3, 0.5, 0.7, 0.6, 0.1}};
    case 4: return {2, Evaluation{0.5, 0.4, 0.05, 0.5, 0.6, 0.6, 0.5, 0.3}};
    case 5: return {2, Evaluation{0.1, 0.02, 0.2, 0.1, 0.05, 2.0, 0.3, 0.05}};
    default: return {-1, Evaluation{}};
  }
}

bool HasFixtureEvaluation(const RunRecord& run) {
  const auto [step, eval] = FixtureEvaluation(run.index);
  return run.eval_step == step && (step < 0 || run.eval == eval);
}

absl::Status WriteFixtureDatabase(const std::string& db_path, const std::string& artifacts_dir, bool write_images) {
  const std::string content_png = Png(200, 120, 40), style_png = Png(30, 60, 200);
  const std::string content_id = absl::StrCat("sha256:", Sha256Hex(content_png));
  const std::string style_id = absl::StrCat("sha256:", Sha256Hex(style_png));
  auto write = [&](const std::string& relative, const std::string& data) -> absl::Status {
    if (!write_images) return absl::OkStatus();
    return WriteFileAtomically((std::filesystem::path(artifacts_dir) / relative).string(), data);
  };
  for (const std::string& id : {content_id, style_id}) {
    const std::string hex = id.substr(7);
    if (absl::Status s = write(absl::StrCat("blobs/", hex.substr(0, 2), "/", hex), id == content_id ? content_png : style_png);
        !s.ok()) {
      return s;
    }
  }

  NewSweep sweep;
  sweep.name = "fixture";
  sweep.method = "grid";
  sweep.source = "fixture.yaml";
  sweep.yaml = "name: fixture\n";
  sweep.spec_json = nlohmann::json{{"images", {{content_id, "images/cat.png"}, {style_id, "images/starry_night.jpg"}}},
                                   {"artifacts_dir", artifacts_dir}}
                        .dump();
  sweep.created_ms = kFixtureStartMs;
  sweep.draws = 8;
  std::vector<NewRun> runs;
  for (double style_weight : {0.01, 0.1, 1.0, 10.0}) {
    for (double learning_rate : {0.02, 0.05}) {
      RunParams params;
      params.content = content_id;
      params.style = {style_id};
      params.style_weight = style_weight;
      params.learning_rate = learning_rate;
      params.steps = 4;
      params.image_size = 32;
      params.snapshot_every = 2;
      runs.push_back(NewRun{static_cast<int>(runs.size()), params.ToJson().dump(), params.Hash(), ""});
    }
  }

  auto store = OpenSqliteStore(db_path);
  if (!store.ok()) return store.status();
  auto sweep_id = (*store)->CreateSweep(sweep, runs);
  if (!sweep_id.ok()) return sweep_id.status();

  const FixtureRun plan[] = {
      {RunState::kSucceeded, "gpu-0", 4.0, 4, ""},
      {RunState::kSucceeded, "gpu-1", 3.0, 4, ""},
      {RunState::kSucceeded, "gpu-0", 1.5, 4, ""},
      {RunState::kFailed, "gpu-1", 6.0, 2, "CUDA out of memory: tried to allocate 2.00 GiB on cuda:1"},
      {RunState::kPruned, "gpu-0", 5.0, 2, ""},
      {RunState::kFailed, "gpu-1", 0.5, 2, "diverged at step 3: total loss is NaN", 3},
  };
  // Agents end their attempts through CompleteAttempt, which checks who
  // holds the attempt.
  for (const char* agent : {"gpu-0", "gpu-1"}) {
    AgentRecord record;
    record.name = agent;
    record.registered_ms = record.last_seen_ms = kFixtureStartMs;
    if (absl::Status s = (*store)->UpsertAgent(record, 0); !s.ok()) return s;
  }
  int index = 0;
  for (const FixtureRun& run : plan) {
    const int64_t start = kFixtureStartMs + 1000 * (index + 1);
    auto lease = (*store)->ClaimNextRun(run.agent, start, start + 30000);
    if (!lease.ok()) return lease.status();
    if (!lease->has_value()) return absl::InternalError("fixture: no run to claim");
    const int64_t run_id = (*lease)->run.id;
    std::vector<MetricRow> rows;
    const auto [eval_step, eval] = FixtureEvaluation(index);
    for (int step = 0; step <= run.last_step; ++step) {
      const double total = 1000 * run.scale / (1 + step);
      rows.push_back(MetricRow{step, total * 0.5, total * 0.375, total * 0.125, total, 0.25,
                               step == eval_step ? std::optional<Evaluation>(eval) : std::nullopt});
    }
    if (absl::Status s = (*store)->AppendMetrics(run_id, 1, rows); !s.ok()) return s;
    const std::string dir = absl::StrCat("1-fixture/run-", index, "/attempt-1/");
    const unsigned char shade = static_cast<unsigned char>(40 * index);
    const bool diverged = run.diverged_step >= 0;
    if (run.state != RunState::kFailed || diverged) {
      // A pruned run's final image is its step-2 one; a diverged run's is
      // its last finite one, which CompleteAttempt marks final.
      const bool pruned = run.state == RunState::kPruned;
      const std::string step2 = dir + (pruned ? "final.png" : "step-000002.png");
      if (absl::Status s = write(step2, Png(shade, 100, 255 - shade)); !s.ok()) return s;
      if (absl::Status s = (*store)->AddSnapshot({run_id, 1, 2, step2, pruned}); !s.ok()) return s;
      if (pruned) {
        if (absl::Status s = (*store)->RequestPrune(run_id, 1); !s.ok()) return s;
      } else if (!diverged) {
        if (absl::Status s = write(dir + "final.png", Png(shade, 200, 255 - shade)); !s.ok()) return s;
        if (absl::Status s = (*store)->AddSnapshot({run_id, 1, 4, dir + "final.png", true}); !s.ok()) return s;
      }
    }
    const int64_t end = start + 2500 + 500 * index;
    if (diverged) {
      AttemptOutcome outcome;
      outcome.agent = run.agent;
      outcome.state = RunState::kFailed;
      outcome.error = run.error;
      outcome.diverged_step = run.diverged_step;
      outcome.counts_for_agent = false;
      auto completed = (*store)->CompleteAttempt(run_id, 1, outcome, end);
      if (!completed.ok()) return completed.status();
    } else if (absl::Status s = (*store)->FinishRun(run_id, 1, run.state, run.error, end); !s.ok()) {
      return s;
    }
    ++index;
  }
  return absl::OkStatus();
}

void FixtureServerTest::SetUp() {
  dir_ = std::filesystem::temp_directory_path() /
         absl::StrCat("stylesweep-fixture-", ::getpid(), "-",
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  const absl::Status s = WriteFixtureDatabase((dir_ / "f.db").string(), (dir_ / "artifacts").string(), true);
  ASSERT_TRUE(s.ok()) << s;
  CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.db = (dir_ / "f.db").string();
  config.artifacts = (dir_ / "artifacts").string();
  auto server = CoordinatorServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
}

void FixtureServerTest::TearDown() {
  server_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace stylesweep::testing
