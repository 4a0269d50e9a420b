// The protocol's trust rules (protos/stylesweep/v1/coordinator.proto, its
// header and each message's comment), checked from outside: a real
// coordinator on a free loopback port, with a token and a database file,
// driven through the raw generated stub the way a buggy or hostile client
// could drive it. After each abuse the test reads the database file itself
// (a second, read-only connection) and lists the artifacts directory: a
// refused call must have changed nothing, and what is stored must stay
// consistent (integrity, foreign keys, attempts, counters, files against
// records).
//
// Nothing here waits for time: leases never need to expire.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/hash.h"
#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/server.h"
#include "rpc/transport.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"
#include "tests/testing/crafted_images.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

namespace fs = std::filesystem;

constexpr char kToken[] = "protocol-abuse-token";
constexpr int64_t kDeadlineMs = 30000;
constexpr char kHolder[] = "holder";  // leases the runs
constexpr char kOther[] = "other";    // registered, holds nothing it is asked about
constexpr char kGhost[] = "ghost";    // never registered

// ------------------------------------------------------------------ PNGs

void AppendBigEndian32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

using testing::PngChunk;

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

// A valid grey PNG of width x height pixels, all of value `shade`: different
// shades give different bytes.
std::string Png(int width, int height, uint8_t shade) {
  std::string ihdr;
  AppendBigEndian32(ihdr, width);
  AppendBigEndian32(ihdr, height);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit greyscale, deflate, no filter, no interlace
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter: none
    raw.append(width, static_cast<char>(shade));
  }
  // zlib: one stored (uncompressed) deflate block, then Adler-32.
  std::string zlib("\x78\x01\x01", 3);
  const uint16_t len = static_cast<uint16_t>(raw.size());
  zlib.push_back(static_cast<char>(len & 0xff));
  zlib.push_back(static_cast<char>(len >> 8));
  zlib.push_back(static_cast<char>(~len & 0xff));
  zlib.push_back(static_cast<char>((~len >> 8) & 0xff));
  zlib += raw;
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  AppendBigEndian32(zlib, (b << 16) | a);
  return kPngSignature + PngChunk("IHDR", ihdr) + PngChunk("IDAT", zlib) + PngChunk("IEND", "");
}

// `size` bytes that start like a PNG (signature and IHDR) and are padded
// with an unknown ancillary chunk: large, cheap, and a PNG by its header.
std::string LargePng(size_t size) {
  std::string png = Png(1, 1, 0);
  const std::string iend = PngChunk("IEND", "");
  png.resize(png.size() - iend.size());
  const size_t padding = size - png.size() - iend.size() - 12;
  png += PngChunk("abCd", std::string(padding, 'x'));
  png += iend;
  return png;
}

// --------------------------------------------------------------- database

// A read-only connection to the coordinator's database file, opened anew for
// each look so it sees every committed transaction. Query errors are test
// failures.
class DatabaseView {
 public:
  explicit DatabaseView(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "open " << path << " read-only: " << sqlite3_errmsg(db_);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~DatabaseView() { sqlite3_close(db_); }
  DatabaseView(const DatabaseView&) = delete;
  DatabaseView& operator=(const DatabaseView&) = delete;

  // Every row, each column as text ("NULL" for a null); `columns` receives
  // the column names.
  std::vector<std::vector<std::string>> Rows(const std::string& sql, std::vector<std::string>* columns = nullptr) {
    std::vector<std::vector<std::string>> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return rows;
    }
    const int n = sqlite3_column_count(stmt);
    if (columns != nullptr) {
      columns->clear();
      for (int i = 0; i < n; ++i) columns->push_back(sqlite3_column_name(stmt, i));
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < n; ++i) {
        const unsigned char* text = sqlite3_column_text(stmt, i);
        row.push_back(text == nullptr ? "NULL" : reinterpret_cast<const char*>(text));
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return rows;
  }

  // The first column of the first row ("" when there is none).
  std::string Text(const std::string& sql) {
    auto rows = Rows(sql);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0];
  }
  int64_t Int(const std::string& sql) { return std::atoll(Text(sql).c_str()); }

  // One column of every row.
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> values;
    for (auto& row : Rows(sql)) values.push_back(row.empty() ? "" : row[0]);
    return values;
  }

 private:
  sqlite3* db_ = nullptr;
};

// A sweep's count of runs in `state` (-1: the state is not listed).
int RunsIn(const google::protobuf::Map<std::string, int32_t>& runs_by_state, const std::string& state) {
  auto it = runs_by_state.find(state);
  return it == runs_by_state.end() ? -1 : it->second;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ", status.error_message());
}

// ------------------------------------------------------------------ fixture

struct Held {
  int64_t run_id = 0;
  int attempt = 0;
  int64_t sweep_id = 0;
};

// One call an agent makes on a run's attempt.
struct AgentCall {
  std::string name;
  std::function<grpc::Status(const std::string& agent, int64_t run_id, int attempt)> call;
};

class ProtocolAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_abuse_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_path_ = (dir_ / "sweeps.db").string();
    artifacts_ = dir_ / "artifacts";
    content_png_ = Png(4, 4, 10);
    style_png_ = Png(4, 4, 200);
  }

  void TearDown() override {
    if (server_ != nullptr) ExpectDatabaseSound("at the end");
    stub_.reset();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }

  // Starts the coordinator; `quarantine_after` 0 never quarantines.
  void StartCoordinator(int quarantine_after = 3) {
    CoordinatorConfig config;
    config.listen = "127.0.0.1:0";
    config.db = db_path_;
    config.artifacts = artifacts_.string();
    config.security.token = kToken;
    config.scheduler.quarantine_after = quarantine_after;
    auto server = CoordinatorServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = MakeChannel(server_->address(), ClientSecurity{});
    ASSERT_TRUE(channel.ok()) << channel.status();
    stub_ = v1::Coordinator::NewStub(*channel);
    for (const char* agent : {kHolder, kOther}) {
      v1::RegisterAgentRequest request;
      request.set_name(agent);
      request.set_host("127.0.0.1");
      request.set_device("cpu");
      v1::RegisterAgentResponse response;
      ASSERT_TRUE(Call(&v1::Coordinator::Stub::RegisterAgent, request, &response).ok());
    }
  }

  // One call with a deadline and, unless told otherwise, the token.
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response, const std::string& token = kToken) {
    grpc::ClientContext context;
    ClientSecurity security;
    security.token = token;
    PrepareContext(context, security, kDeadlineMs);
    return (stub_.get()->*method)(&context, request, response);
  }

  // A grid of `runs` runs (style weights 0.01, 0.02, ...) of `steps` steps
  // at 32 px; `extra` is appended at the top level.
  static std::string GridYaml(const std::string& name, int runs, int steps, const std::string& extra = "") {
    std::vector<std::string> weights;
    for (int i = 0; i < runs; ++i) weights.push_back(absl::StrCat(0.01 * (i + 1)));
    return absl::StrCat("name: ", name, "\nmethod: grid\ncontent: content.png\nstyle: style.png\n", extra,
                        "parameters:\n  style_weight: {values: [", absl::StrJoin(weights, ", "), "]}\n",
                        "  steps: {value: ", steps, "}\n  image_size: {value: 32}\n  snapshot_every: {value: 1}\n");
  }

  grpc::Status Submit(const std::string& yaml, const std::map<std::string, std::string>& files,
                      v1::SubmitSweepResponse* response) {
    v1::SubmitSweepRequest request;
    request.set_yaml(yaml);
    request.set_source("abuse.yaml");
    for (const auto& [path, data] : files) {
      v1::FileBlob* file = request.add_files();
      file->set_path(path);
      file->set_data(data);
    }
    return Call(&v1::Coordinator::Stub::SubmitSweep, request, response);
  }

  int64_t SubmitGrid(const std::string& name, int runs, int steps, const std::string& extra = "") {
    v1::SubmitSweepResponse response;
    grpc::Status status = Submit(GridYaml(name, runs, steps, extra),
                                 {{"content.png", content_png_}, {"style.png", style_png_}}, &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response.sweep().id();
  }

  Held Lease(const std::string& agent) {
    v1::LeaseRunRequest request;
    request.set_agent(agent);
    v1::LeaseRunResponse response;
    grpc::Status status = Call(&v1::Coordinator::Stub::LeaseRun, request, &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    EXPECT_TRUE(response.granted()) << agent << " got no run";
    return Held{response.run_id(), response.attempt(), response.sweep_id()};
  }

  static v1::StepLoss Loss(int step, double total = 10.0) {
    v1::StepLoss loss;
    loss.set_step(step);
    loss.set_content(total * 0.5);
    loss.set_style(total * 0.4);
    loss.set_tv(total * 0.1);
    loss.set_total(total);
    loss.set_step_seconds(0.01);
    return loss;
  }

  grpc::Status Report(const std::string& agent, int64_t run_id, int attempt, const std::vector<v1::StepLoss>& rows,
                      v1::ReportMetricsResponse* out = nullptr) {
    v1::ReportMetricsRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    for (const v1::StepLoss& row : rows) *request.add_losses() = row;
    v1::ReportMetricsResponse response;
    return Call(&v1::Coordinator::Stub::ReportMetrics, request, out != nullptr ? out : &response);
  }

  // Losses of steps first..last, all finite.
  grpc::Status ReportSteps(const Held& held, int first, int last, double total = 10.0) {
    std::vector<v1::StepLoss> rows;
    for (int step = first; step <= last; ++step) rows.push_back(Loss(step, total));
    return Report(kHolder, held.run_id, held.attempt, rows);
  }

  grpc::Status Upload(const std::string& agent, int64_t run_id, int attempt, int step, bool final,
                      const std::string& png, v1::UploadSnapshotResponse* out = nullptr) {
    v1::UploadSnapshotRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_step(step);
    request.set_final(final);
    request.set_png(png);
    v1::UploadSnapshotResponse response;
    return Call(&v1::Coordinator::Stub::UploadSnapshot, request, out != nullptr ? out : &response);
  }

  grpc::Status Heartbeat(const std::string& agent, int64_t run_id, int attempt, int step,
                         v1::HeartbeatResponse* out = nullptr) {
    v1::HeartbeatRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_step(step);
    request.set_steps(step + 1);
    request.set_steps_per_second(3.5);
    v1::HeartbeatResponse response;
    return Call(&v1::Coordinator::Stub::Heartbeat, request, out != nullptr ? out : &response);
  }

  grpc::Status Complete(const std::string& agent, int64_t run_id, int attempt, const std::string& state,
                        const std::function<void(v1::CompleteRunRequest&)>& modify = nullptr) {
    v1::CompleteRunRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_state(state);
    if (state == "FAILED") {
      request.set_error("the device said no");
      request.set_log_tail("last line of the log\n");
    }
    if (modify) modify(request);
    v1::CompleteRunResponse response;
    return Call(&v1::Coordinator::Stub::CompleteRun, request, &response);
  }

  grpc::Status Release(const std::string& agent, int64_t run_id, int attempt) {
    v1::ReleaseRunRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_reason("stopping");
    v1::ReleaseRunResponse response;
    return Call(&v1::Coordinator::Stub::ReleaseRun, request, &response);
  }

  grpc::Status Control(const std::string& sweep, v1::ControlSweepRequest::Action action) {
    v1::ControlSweepRequest request;
    request.set_sweep(sweep);
    request.set_action(action);
    v1::ControlSweepResponse response;
    return Call(&v1::Coordinator::Stub::ControlSweep, request, &response);
  }

  grpc::Status Delete(const std::string& sweep, bool cancel_first, v1::DeleteSweepResponse* out = nullptr) {
    v1::DeleteSweepRequest request;
    request.set_sweep(sweep);
    request.set_cancel_first(cancel_first);
    v1::DeleteSweepResponse response;
    return Call(&v1::Coordinator::Stub::DeleteSweep, request, out != nullptr ? out : &response);
  }

  v1::RunSummary GetRunSummary(int64_t run_id) {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::GetRunResponse response;
    grpc::Status status = Call(&v1::Coordinator::Stub::GetRun, request, &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response.run();
  }

  // Every mutating call an agent makes on an attempt, each of which the
  // holder of the attempt could make successfully at this point (a run of
  // `steps` steps whose holder reported steps 0 and `steps` only, so step 1
  // would be new, and SUCCEEDED has its last step).
  std::vector<AgentCall> MutatingCalls(int steps) {
    const std::string png = Png(2, 2, 77);
    const std::string final_png = Png(2, 2, 78);
    return {
        {"ReportMetrics", [=](const std::string& a, int64_t r, int n) { return Report(a, r, n, {Loss(1, 9.0)}); }},
        {"UploadSnapshot", [=](const std::string& a, int64_t r, int n) { return Upload(a, r, n, 1, false, png); }},
        {"UploadSnapshot(final)",
         [=](const std::string& a, int64_t r, int n) { return Upload(a, r, n, steps, true, final_png); }},
        {"Heartbeat", [=](const std::string& a, int64_t r, int n) { return Heartbeat(a, r, n, 1); }},
        {"CompleteRun(SUCCEEDED)", [=](const std::string& a, int64_t r, int n) { return Complete(a, r, n, "SUCCEEDED"); }},
        {"CompleteRun(FAILED)", [=](const std::string& a, int64_t r, int n) { return Complete(a, r, n, "FAILED"); }},
        {"CompleteRun(FAILED, out_of_memory)",
         [=](const std::string& a, int64_t r, int n) {
           return Complete(a, r, n, "FAILED", [](v1::CompleteRunRequest& q) { q.set_out_of_memory(true); });
         }},
        {"CompleteRun(FAILED, diverged)",
         [=](const std::string& a, int64_t r, int n) {
           return Complete(a, r, n, "FAILED", [](v1::CompleteRunRequest& q) {
             q.set_diverged(true);
             q.set_diverged_step(1);
           });
         }},
        {"CompleteRun(CANCELLED)", [=](const std::string& a, int64_t r, int n) { return Complete(a, r, n, "CANCELLED"); }},
        {"CompleteRun(PRUNED)", [=](const std::string& a, int64_t r, int n) { return Complete(a, r, n, "PRUNED"); }},
        {"ReleaseRun", [=](const std::string& a, int64_t r, int n) { return Release(a, r, n); }},
    };
  }

  // `calls` but those named.
  static std::vector<AgentCall> Except(std::vector<AgentCall> calls, const std::set<std::string>& names) {
    calls.erase(std::remove_if(calls.begin(), calls.end(), [&](const AgentCall& c) { return names.count(c.name) > 0; }),
                calls.end());
    return calls;
  }

  // Everything a call could change: every row of every table (but agents'
  // last_seen_ms, which says only that a caller was heard from) and every
  // file under the artifacts directory with its digest. Sorted lines.
  std::vector<std::string> Fingerprint() {
    DatabaseView db(db_path_);
    std::vector<std::string> lines;
    for (const std::string& table :
         db.Column("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations'")) {
      std::vector<std::string> columns;
      for (const auto& row : db.Rows(absl::StrCat("SELECT * FROM \"", table, "\""), &columns)) {
        std::string line = table + ":";
        for (size_t i = 0; i < row.size(); ++i) {
          if (table == "agents" && columns[i] == "last_seen_ms") continue;
          // Long values (params, specs, YAML) by digest, so a diff stays readable.
          absl::StrAppend(&line, " ", columns[i], "=",
                          row[i].size() > 80 ? "sha256:" + Sha256Hex(row[i]).substr(0, 16) : row[i]);
        }
        lines.push_back(std::move(line));
      }
    }
    for (const auto& [path, digest] : Files(artifacts_)) lines.push_back(absl::StrCat("file: ", path, " ", digest));
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  // Relative path -> size and digest (or "" without `digests`) of every
  // regular file under `root`.
  static std::map<std::string, std::string> Files(const fs::path& root, bool digests = true) {
    std::map<std::string, std::string> files;
    std::error_code ec;
    if (!fs::exists(root, ec)) return files;
    for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file()) continue;
      if (!digests) {
        files[fs::relative(it->path(), root).string()] = "";
        continue;
      }
      auto data = ReadFileToString(it->path().string());
      files[fs::relative(it->path(), root).string()] =
          data.ok() ? absl::StrCat(data->size(), " bytes ", Sha256Hex(*data)) : "unreadable";
    }
    return files;
  }

  // What changed between two fingerprints, line by line ("" when nothing).
  static std::string Changes(const std::vector<std::string>& before, const std::vector<std::string>& after) {
    std::vector<std::string> gone, added;
    std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(gone));
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    std::string out;
    for (const std::string& line : gone) absl::StrAppend(&out, "\n  - ", line);
    for (const std::string& line : added) absl::StrAppend(&out, "\n  + ", line);
    return out;
  }

  // The database is sound and agrees with itself and with the files.
  void ExpectDatabaseSound(const std::string& when) {
    SCOPED_TRACE(when);
    DatabaseView db(db_path_);
    EXPECT_EQ(db.Text("PRAGMA integrity_check"), "ok");
    EXPECT_THAT(db.Rows("PRAGMA foreign_key_check"), IsEmpty());
    // A run's attempts are numbered 1..runs.attempt, none missing.
    EXPECT_EQ(db.Int("SELECT count(*) FROM runs r WHERE r.attempt <> "
                     "(SELECT count(*) FROM attempts a WHERE a.run_id = r.id) OR r.attempt <> "
                     "(SELECT coalesce(max(a.attempt), 0) FROM attempts a WHERE a.run_id = r.id)"),
              0);
    // A RUNNING run is held by its current attempt's agent; no other attempt
    // is RUNNING.
    EXPECT_EQ(db.Int("SELECT count(*) FROM runs r WHERE r.state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM attempts a "
                     "WHERE a.run_id = r.id AND a.attempt = r.attempt AND a.state = 'RUNNING' AND a.agent = r.agent)"),
              0);
    EXPECT_EQ(db.Int("SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id "
                     "WHERE a.state = 'RUNNING' AND (r.state <> 'RUNNING' OR a.attempt <> r.attempt)"),
              0);
    // An ended run ended with its current attempt.
    EXPECT_EQ(db.Int("SELECT count(*) FROM runs r JOIN attempts a ON a.run_id = r.id AND a.attempt = r.attempt "
                     "WHERE r.state IN ('SUCCEEDED', 'PRUNED') AND a.state <> r.state"),
              0);
    // No loss or snapshot beyond a run's planned steps.
    EXPECT_EQ(db.Int("SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                     "WHERE m.step < 0 OR m.step > json_extract(r.params_json, '$.steps')"),
              0);
    EXPECT_EQ(db.Int("SELECT count(*) FROM snapshots s JOIN runs r ON r.id = s.run_id "
                     "WHERE s.step < 0 OR s.step > json_extract(r.params_json, '$.steps')"),
              0);
    // A run's final image is one of its snapshots.
    EXPECT_EQ(db.Int("SELECT count(*) FROM runs r WHERE r.final_snapshot <> '' AND NOT EXISTS "
                     "(SELECT 1 FROM snapshots s WHERE s.run_id = r.id AND s.path = r.final_snapshot)"),
              0);
    EXPECT_EQ(db.Int("SELECT count(*) FROM agents WHERE failures < 0 OR failures > runs_finished "
                     "OR consecutive_failures > failures"),
              0);
    // Records and files agree: every snapshot record has its file, every
    // file but the input images has its record.
    std::set<std::string> recorded;
    for (const std::string& path : db.Column("SELECT path FROM snapshots")) recorded.insert(path);
    std::set<std::string> stored;
    for (const auto& [path, unused] : Files(artifacts_, /*digests=*/false)) {
      if (path.rfind("blobs/", 0) != 0) stored.insert(path);
    }
    EXPECT_EQ(stored, recorded);
  }

  // A renewed lease shows as a later lease_expires_ms only once the clock
  // has moved past the millisecond of the grant: make sure it has.
  static void LetTheClockTick() {
    const int64_t start = SystemClock().NowMillis();
    while (SystemClock().NowMillis() < start + 2) std::this_thread::yield();
  }

  // Runs `call` for each caller/attempt and expects `code` and no change.
  void ExpectRefusedWithoutChange(const std::vector<AgentCall>& calls, const std::string& agent, int64_t run_id,
                                  int attempt, grpc::StatusCode code) {
    for (const AgentCall& call : calls) {
      SCOPED_TRACE(absl::StrCat(call.name, " by '", agent, "' on run ", run_id, " attempt ", attempt));
      const std::vector<std::string> before = Fingerprint();
      grpc::Status status = call.call(agent, run_id, attempt);
      EXPECT_EQ(status.error_code(), code) << Describe(status);
      EXPECT_EQ(Changes(before, Fingerprint()), "");
      ExpectDatabaseSound("after the refused call");
    }
  }

  fs::path dir_;
  std::string db_path_;
  fs::path artifacts_;
  std::string content_png_;
  std::string style_png_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

// ------------------------------------------------- who may act on an attempt

// Another registered agent, a name that never registered, and the holder
// itself with an attempt number it was never given: PERMISSION_DENIED for
// every mutating call, and nothing changes (no rows, files, lease renewal,
// failure count, and the intruder is not shown busy).
TEST_F(ProtocolAbuseTest, AnAttemptThatWasNeverTheCallersIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("intruders", 1, kSteps);
  const Held held = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(held, 0, 0).ok());
  ASSERT_TRUE(ReportSteps(held, kSteps, kSteps).ok());
  ASSERT_TRUE(Upload(kHolder, held.run_id, held.attempt, 0, false, Png(2, 2, 1)).ok());
  LetTheClockTick();

  const std::vector<AgentCall> calls = MutatingCalls(kSteps);
  ExpectRefusedWithoutChange(calls, kOther, held.run_id, held.attempt, grpc::StatusCode::PERMISSION_DENIED);
  ExpectRefusedWithoutChange(calls, kGhost, held.run_id, held.attempt, grpc::StatusCode::PERMISSION_DENIED);
  ExpectRefusedWithoutChange(calls, kHolder, held.run_id, held.attempt + 1, grpc::StatusCode::PERMISSION_DENIED);

  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT count(*) FROM agents WHERE name = 'ghost'"), 0);
  EXPECT_EQ(db.Int("SELECT run_id FROM agents WHERE name = 'other'"), 0);
  EXPECT_EQ(db.Int("SELECT sum(failures + consecutive_failures + runs_finished) FROM agents"), 0);
  // The holder still holds it, and may finish it.
  EXPECT_TRUE(Complete(kHolder, held.run_id, held.attempt, "SUCCEEDED").ok());
}

// An attempt the caller held but no longer does (handed back and leased to
// another agent): FAILED_PRECONDITION for every call but the retried
// hand-back, and nothing changes. The new holder may not touch the old
// attempt, nor the old holder the new one.
TEST_F(ProtocolAbuseTest, AFormerAttemptIsFailedPreconditionAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("handed-back", 1, kSteps);
  const Held first = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(first, 0, 0).ok());
  ASSERT_TRUE(Upload(kHolder, first.run_id, first.attempt, 0, false, Png(2, 2, 1)).ok());
  ASSERT_TRUE(Release(kHolder, first.run_id, first.attempt).ok());
  const Held second = Lease(kOther);
  ASSERT_EQ(second.run_id, first.run_id);
  ASSERT_EQ(second.attempt, first.attempt + 1);
  ASSERT_TRUE(Report(kOther, second.run_id, second.attempt, {Loss(0), Loss(kSteps)}).ok());
  LetTheClockTick();

  // (Heartbeats and hand-backs on former attempts: see
  // AFormerAttemptsHeartbeatIsToldToStopAndItsHandBackIsRefused.)
  std::vector<AgentCall> calls = MutatingCalls(kSteps);
  const AgentCall release = calls.back();
  calls.pop_back();
  ExpectRefusedWithoutChange(Except(calls, {"Heartbeat"}), kHolder, first.run_id, first.attempt,
                             grpc::StatusCode::FAILED_PRECONDITION);
  {
    // The hand-back again is a retry of what ended the attempt: whatever it
    // answers, it changes nothing.
    const std::vector<std::string> before = Fingerprint();
    grpc::Status status = release.call(kHolder, first.run_id, first.attempt);
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) << Describe(status);
    EXPECT_EQ(Changes(before, Fingerprint()), "");
  }
  calls.push_back(release);
  ExpectRefusedWithoutChange(calls, kOther, first.run_id, first.attempt, grpc::StatusCode::PERMISSION_DENIED);
  ExpectRefusedWithoutChange(calls, kHolder, second.run_id, second.attempt, grpc::StatusCode::PERMISSION_DENIED);
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT run_id FROM agents WHERE name = 'holder'"), 0);
}

// After the run ended (SUCCEEDED) its holder's attempt is no longer current:
// a retried SUCCEEDED is OK and counts once; anything else is
// FAILED_PRECONDITION and changes nothing.
TEST_F(ProtocolAbuseTest, AnEndedRunTakesNoMoreReports) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("ended", 1, kSteps);
  const Held held = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(held, 0, 0).ok());
  ASSERT_TRUE(ReportSteps(held, kSteps, kSteps).ok());
  ASSERT_TRUE(Complete(kHolder, held.run_id, held.attempt, "SUCCEEDED").ok());
  LetTheClockTick();

  std::vector<AgentCall> calls = MutatingCalls(kSteps);
  auto succeeded = std::find_if(calls.begin(), calls.end(),
                                [](const AgentCall& c) { return c.name == "CompleteRun(SUCCEEDED)"; });
  const AgentCall retry = *succeeded;
  ExpectRefusedWithoutChange(Except(calls, {"CompleteRun(SUCCEEDED)", "Heartbeat", "ReleaseRun"}), kHolder,
                             held.run_id, held.attempt, grpc::StatusCode::FAILED_PRECONDITION);
  const std::vector<std::string> before = Fingerprint();
  grpc::Status status = retry.call(kHolder, held.run_id, held.attempt);
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Changes(before, Fingerprint()), "");
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT runs_finished FROM agents WHERE name = 'holder'"), 1);
}

// A cancelled sweep's run: its holder is told to stop, and nothing it sends
// lands.
TEST_F(ProtocolAbuseTest, ACancelledRunTakesNoMoreReports) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("cancelled", 1, kSteps);
  const Held held = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(held, 0, 0).ok());
  ASSERT_TRUE(ReportSteps(held, kSteps, kSteps).ok());
  ASSERT_TRUE(Control("cancelled", v1::ControlSweepRequest::CANCEL).ok());
  LetTheClockTick();

  const std::vector<AgentCall> calls = MutatingCalls(kSteps);
  ExpectRefusedWithoutChange(Except(calls, {"CompleteRun(CANCELLED)", "Heartbeat", "ReleaseRun"}), kHolder,
                             held.run_id, held.attempt, grpc::StatusCode::FAILED_PRECONDITION);
  ExpectRefusedWithoutChange(calls, kOther, held.run_id, held.attempt, grpc::StatusCode::PERMISSION_DENIED);
}

// On an attempt that was the caller's and no longer is (handed back and
// leased again, ended, or cancelled with its sweep), a heartbeat is answered
// stop_run (as the protocol's header says) and a hand-back FAILED_PRECONDITION;
// neither changes anything. (The hand-back of the attempt that was handed
// back is a retry, and so not among them.)
TEST_F(ProtocolAbuseTest, AFormerAttemptsHeartbeatIsToldToStopAndItsHandBackIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("stale", 2, kSteps);
  const Held handed_back = Lease(kHolder);
  ASSERT_TRUE(Release(kHolder, handed_back.run_id, handed_back.attempt).ok());
  ASSERT_EQ(Lease(kOther).run_id, handed_back.run_id);
  const Held ended = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(ended, 0, kSteps).ok());
  ASSERT_TRUE(Complete(kHolder, ended.run_id, ended.attempt, "SUCCEEDED").ok());
  SubmitGrid("stale-cancelled", 1, kSteps);
  const Held cancelled = Lease(kHolder);
  ASSERT_TRUE(Control("stale-cancelled", v1::ControlSweepRequest::CANCEL).ok());
  LetTheClockTick();

  const std::vector<std::pair<std::string, Held>> former = {
      {"handed back", handed_back}, {"ended", ended}, {"cancelled", cancelled}};
  for (const auto& [how, held] : former) {
    SCOPED_TRACE(absl::StrCat("run ", held.run_id, " attempt ", held.attempt, " (", how, ")"));
    std::vector<std::string> before = Fingerprint();
    v1::HeartbeatResponse heartbeat;
    grpc::Status status = Heartbeat(kHolder, held.run_id, held.attempt, 1, &heartbeat);
    EXPECT_TRUE(status.ok()) << Describe(status);
    EXPECT_TRUE(heartbeat.stop_run());
    EXPECT_EQ(Changes(before, Fingerprint()), "");
    if (how == "handed back") continue;
    status = Release(kHolder, held.run_id, held.attempt);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "ReleaseRun: " << Describe(status);
    EXPECT_EQ(Changes(before, Fingerprint()), "");
  }
}

// Without the token nothing is even looked at.
TEST_F(ProtocolAbuseTest, CallsWithoutTheTokenChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("tokenless", 1, kSteps);
  const Held held = Lease(kHolder);
  LetTheClockTick();
  for (const std::string token : {"", "not-the-token"}) {
    SCOPED_TRACE(token.empty() ? "no token" : "a wrong token");
    const std::vector<std::string> before = Fingerprint();
    v1::ReportMetricsRequest report;
    report.set_agent(kHolder);
    report.set_run_id(held.run_id);
    report.set_attempt(held.attempt);
    *report.add_losses() = Loss(0);
    v1::ReportMetricsResponse report_response;
    EXPECT_EQ(Call(&v1::Coordinator::Stub::ReportMetrics, report, &report_response, token).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_agent(kHolder);
    heartbeat.set_run_id(held.run_id);
    heartbeat.set_attempt(held.attempt);
    v1::HeartbeatResponse heartbeat_response;
    EXPECT_EQ(Call(&v1::Coordinator::Stub::Heartbeat, heartbeat, &heartbeat_response, token).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::DeleteSweepRequest remove;
    remove.set_sweep("tokenless");
    remove.set_cancel_first(true);
    v1::DeleteSweepResponse remove_response;
    EXPECT_EQ(Call(&v1::Coordinator::Stub::DeleteSweep, remove, &remove_response, token).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Changes(before, Fingerprint()), "");
  }
}

// ------------------------------------------------------------ what is sent

// Rows are judged one by one: steps outside 0..steps are refused and listed,
// the others stored.
TEST_F(ProtocolAbuseTest, ReportMetricsRefusesStepsOutsideThePlanAndKeepsTheRest) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 4;
  SubmitGrid("steps", 1, kSteps);
  const Held held = Lease(kHolder);
  v1::ReportMetricsResponse response;
  grpc::Status status = Report(kHolder, held.run_id, held.attempt,
                               {Loss(-1), Loss(0), Loss(2), Loss(kSteps + 1), Loss(INT_MAX), Loss(INT_MIN),
                                Loss(kSteps)},
                               &response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_THAT(response.refused_steps(), UnorderedElementsAre(-1, kSteps + 1, INT_MAX, INT_MIN));
  EXPECT_FALSE(response.stop_run());
  DatabaseView db(db_path_);
  EXPECT_THAT(db.Column(absl::StrCat("SELECT step FROM metrics WHERE run_id = ", held.run_id, " ORDER BY step")),
              ElementsAre("0", "2", "4"));
  EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", held.run_id)), "RUNNING");
  EXPECT_EQ(db.Int(absl::StrCat("SELECT last_step FROM runs WHERE id = ", held.run_id)), kSteps);
  // A batch of nothing but refused rows stores nothing.
  const std::vector<std::string> before = Fingerprint();
  ASSERT_TRUE(Report(kHolder, held.run_id, held.attempt, {Loss(-5), Loss(kSteps + 7)}, &response).ok());
  EXPECT_THAT(response.refused_steps(), UnorderedElementsAre(-5, kSteps + 7));
  EXPECT_EQ(Changes(before, Fingerprint()), "");
}

// A NaN or infinite loss (in any of the four) ends the run FAILED as diverged
// at that step: the finite rows before it kept, the rows after it refused,
// its latest snapshot its final image, the agent told to stop, and the run
// not queued again. Divergence is the run's fault, not the agent's.
TEST_F(ProtocolAbuseTest, ANonFiniteLossEndsTheRunAsDiverged) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(/*quarantine_after=*/0));
  constexpr int kSteps = 5;
  SubmitGrid("diverging", 4, kSteps);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::function<void(v1::StepLoss&)>> poisons = {
      [&](v1::StepLoss& l) { l.set_total(nan); },
      [&](v1::StepLoss& l) { l.set_style(inf); },
      [&](v1::StepLoss& l) { l.set_content(-inf); },
      [&](v1::StepLoss& l) { l.set_tv(nan); },
  };
  for (size_t i = 0; i < poisons.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("poison ", i));
    const Held held = Lease(kHolder);
    v1::UploadSnapshotResponse snapshot;
    ASSERT_TRUE(Upload(kHolder, held.run_id, held.attempt, 1, false, Png(2, 2, 40), &snapshot).ok());
    v1::StepLoss bad = Loss(2);
    poisons[i](bad);
    v1::ReportMetricsResponse response;
    grpc::Status status =
        Report(kHolder, held.run_id, held.attempt, {Loss(0), Loss(1), bad, Loss(3), Loss(4)}, &response);
    ASSERT_TRUE(status.ok()) << Describe(status);
    EXPECT_TRUE(response.stop_run());
    EXPECT_THAT(response.refused_steps(), ::testing::IsSupersetOf({3, 4}));

    DatabaseView db(db_path_);
    EXPECT_THAT(db.Column(absl::StrCat("SELECT step FROM metrics WHERE run_id = ", held.run_id, " ORDER BY step")),
                ElementsAre("0", "1"));
    EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", held.run_id)), "FAILED");
    EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM attempts WHERE run_id = ", held.run_id)), "FAILED");
    EXPECT_THAT(db.Text(absl::StrCat("SELECT error FROM runs WHERE id = ", held.run_id)),
                HasSubstr("diverged at step 2"));
    EXPECT_EQ(db.Int(absl::StrCat("SELECT diverged_step FROM runs WHERE id = ", held.run_id)), 2);
    EXPECT_EQ(db.Text(absl::StrCat("SELECT final_snapshot FROM runs WHERE id = ", held.run_id)), snapshot.path());
    const v1::RunSummary summary = GetRunSummary(held.run_id);
    EXPECT_TRUE(summary.diverged());
    EXPECT_EQ(summary.diverged_step(), 2);
    EXPECT_EQ(summary.state(), "FAILED");
    EXPECT_EQ(db.Int("SELECT failures + consecutive_failures FROM agents WHERE name = 'holder'"), 0);

    // The run is over for its agent.
    const std::vector<std::string> before = Fingerprint();
    EXPECT_EQ(Report(kHolder, held.run_id, held.attempt, {Loss(5)}).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(Changes(before, Fingerprint()), "");
  }
  // None of them is queued again.
  v1::LeaseRunRequest request;
  request.set_agent(kOther);
  v1::LeaseRunResponse response;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::LeaseRun, request, &response).ok());
  EXPECT_FALSE(response.granted()) << "run " << response.run_id();
}

// SUCCEEDED needs the losses of the last step; without them the call is
// FAILED_PRECONDITION and changes nothing.
TEST_F(ProtocolAbuseTest, SucceededNeedsTheLastStepsLosses) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("unfinished", 1, kSteps);
  const Held held = Lease(kHolder);
  LetTheClockTick();
  std::vector<std::string> before = Fingerprint();
  EXPECT_EQ(Complete(kHolder, held.run_id, held.attempt, "SUCCEEDED").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Changes(before, Fingerprint()), "");
  ASSERT_TRUE(ReportSteps(held, 0, kSteps - 1).ok());
  before = Fingerprint();
  EXPECT_EQ(Complete(kHolder, held.run_id, held.attempt, "SUCCEEDED").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  ASSERT_TRUE(ReportSteps(held, kSteps, kSteps).ok());
  grpc::Status status = Complete(kHolder, held.run_id, held.attempt, "SUCCEEDED");
  EXPECT_TRUE(status.ok()) << Describe(status);
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", held.run_id)), "SUCCEEDED");
  EXPECT_EQ(db.Int("SELECT runs_finished FROM agents WHERE name = 'holder'"), 1);
}

// PRUNED needs the coordinator's verdict; with it, the run ends PRUNED.
TEST_F(ProtocolAbuseTest, PrunedNeedsThePruneVerdict) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 4;  // rungs at steps 1 and 3
  SubmitGrid("median", 3, kSteps, "metric: {name: loss/total}\nearly_terminate: {type: median, min_iter: 1}\n");
  const Held good = Lease(kHolder);
  const Held better = Lease(kHolder);
  const Held bad = Lease(kHolder);
  LetTheClockTick();
  std::vector<std::string> before = Fingerprint();
  EXPECT_EQ(Complete(kHolder, good.run_id, good.attempt, "PRUNED").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  v1::ReportMetricsResponse response;
  ASSERT_TRUE(Report(kHolder, good.run_id, good.attempt, {Loss(0, 5), Loss(1, 2)}, &response).ok());
  EXPECT_FALSE(response.prune());
  ASSERT_TRUE(Report(kHolder, better.run_id, better.attempt, {Loss(0, 5), Loss(1, 1)}, &response).ok());
  EXPECT_FALSE(response.prune());
  // Better than the other run at the rung: no verdict for it either.
  before = Fingerprint();
  EXPECT_EQ(Complete(kHolder, better.run_id, better.attempt, "PRUNED").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  ASSERT_TRUE(Report(kHolder, bad.run_id, bad.attempt, {Loss(0, 5), Loss(1, 100)}, &response).ok());
  ASSERT_TRUE(response.prune());
  grpc::Status status = Complete(kHolder, bad.run_id, bad.attempt, "PRUNED");
  EXPECT_TRUE(status.ok()) << Describe(status);
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", bad.run_id)), "PRUNED");
  EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", good.run_id)), "RUNNING");
}

// CompleteRun(diverged): FAILED for good, the step recorded, and the agent's
// failure counters untouched (with quarantine after one failure, it is not
// quarantined).
TEST_F(ProtocolAbuseTest, ADivergedCompletionFailsTheRunForGoodWithoutBlamingTheAgent) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(/*quarantine_after=*/1));
  constexpr int kSteps = 4;
  SubmitGrid("nan", 1, kSteps);
  const Held held = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(held, 0, 1).ok());
  v1::UploadSnapshotResponse snapshot;
  ASSERT_TRUE(Upload(kHolder, held.run_id, held.attempt, 1, true, Png(2, 2, 9), &snapshot).ok());
  auto diverged = [&] {
    return Complete(kHolder, held.run_id, held.attempt, "FAILED", [](v1::CompleteRunRequest& request) {
      request.set_error("loss became NaN");
      request.set_diverged(true);
      request.set_diverged_step(2);
    });
  };
  grpc::Status status = diverged();
  ASSERT_TRUE(status.ok()) << Describe(status);

  DatabaseView db(db_path_);
  EXPECT_EQ(db.Text(absl::StrCat("SELECT state FROM runs WHERE id = ", held.run_id)), "FAILED");
  EXPECT_EQ(db.Int(absl::StrCat("SELECT diverged_step FROM runs WHERE id = ", held.run_id)), 2);
  EXPECT_EQ(db.Int(absl::StrCat("SELECT count(*) FROM attempts WHERE run_id = ", held.run_id)), 1);
  EXPECT_EQ(db.Text(absl::StrCat("SELECT final_snapshot FROM runs WHERE id = ", held.run_id)), snapshot.path());
  EXPECT_THAT(db.Column(absl::StrCat("SELECT step FROM metrics WHERE run_id = ", held.run_id, " ORDER BY step")),
              ElementsAre("0", "1"));
  EXPECT_EQ(db.Int("SELECT failures FROM agents WHERE name = 'holder'"), 0);
  EXPECT_EQ(db.Int("SELECT consecutive_failures FROM agents WHERE name = 'holder'"), 0);
  EXPECT_EQ(db.Text("SELECT quarantine_reason FROM agents WHERE name = 'holder'"), "");
  const v1::RunSummary summary = GetRunSummary(held.run_id);
  EXPECT_TRUE(summary.diverged());
  EXPECT_EQ(summary.diverged_step(), 2);

  // A retry counts once; no agent gets the run again.
  const std::vector<std::string> before = Fingerprint();
  status = diverged();
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Changes(before, Fingerprint()), "");
  for (const char* agent : {kOther, kHolder}) {
    v1::LeaseRunRequest request;
    request.set_agent(agent);
    v1::LeaseRunResponse response;
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::LeaseRun, request, &response).ok());
    EXPECT_FALSE(response.granted()) << agent;
    EXPECT_EQ(response.quarantined(), "") << agent;
  }
}

// Snapshots must be PNGs (signature and IHDR) at a step within 0..steps:
// otherwise INVALID_ARGUMENT, with no record and no file.
TEST_F(ProtocolAbuseTest, SnapshotsMustBePngsWithinThePlan) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("pngs", 1, kSteps);
  const Held held = Lease(kHolder);
  const std::string png = Png(2, 2, 5);
  auto jpeg = ReadFileToString(std::string(STYLESWEEP_SOURCE_DIR) + "/configs/images/starry_night.jpg");
  ASSERT_TRUE(jpeg.ok());
  std::string truncated_ihdr = kPngSignature;
  AppendBigEndian32(truncated_ihdr, 13);
  truncated_ihdr += std::string("IHDR\0\0", 6);
  const std::vector<std::pair<std::string, std::string>> not_pngs = {
      {"empty", ""},
      {"text", "definitely not an image"},
      {"gif", std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14)},
      {"jpeg", *jpeg},
      {"signature only", kPngSignature},
      {"signature then IEND", kPngSignature + PngChunk("IEND", "")},
      {"truncated IHDR", truncated_ihdr},
      {"IDAT before IHDR", kPngSignature + PngChunk("IDAT", "x") + png.substr(8)},
      {"PNG signature off by one byte", "\x89PNG\r\n\x1a\r" + png.substr(8)},
  };
  for (const bool final : {false, true}) {
    for (const auto& [what, bytes] : not_pngs) {
      SCOPED_TRACE(absl::StrCat(what, final ? " (final)" : ""));
      const std::vector<std::string> before = Fingerprint();
      grpc::Status status = Upload(kHolder, held.run_id, held.attempt, 1, final, bytes);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
      EXPECT_EQ(Changes(before, Fingerprint()), "");
    }
    for (const int step : {-1, kSteps + 1, INT_MAX, INT_MIN}) {
      SCOPED_TRACE(absl::StrCat("step ", step, final ? " (final)" : ""));
      const std::vector<std::string> before = Fingerprint();
      grpc::Status status = Upload(kHolder, held.run_id, held.attempt, step, final, png);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
      EXPECT_EQ(Changes(before, Fingerprint()), "");
    }
  }
  ExpectDatabaseSound("after the refused uploads");
  // The run is unharmed: a real PNG at step 0 and at the last step land.
  EXPECT_TRUE(Upload(kHolder, held.run_id, held.attempt, 0, false, png).ok());
  EXPECT_TRUE(Upload(kHolder, held.run_id, held.attempt, kSteps, true, png).ok());
}

// The same bytes again are a no-op; other bytes for a stored step are
// ALREADY_EXISTS and the file stays; a final at a stored step marks that
// snapshot final.
TEST_F(ProtocolAbuseTest, SnapshotUploadsNeverOverwriteWhatIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  SubmitGrid("snapshots", 2, kSteps);
  const Held held = Lease(kHolder);
  const std::string a = Png(2, 2, 1);
  const std::string b = Png(2, 2, 2);

  v1::UploadSnapshotResponse first;
  ASSERT_TRUE(Upload(kHolder, held.run_id, held.attempt, 1, false, a, &first).ok());
  ASSERT_FALSE(first.path().empty());
  EXPECT_EQ(*ReadFileToString((artifacts_ / first.path()).string()), a);

  std::vector<std::string> before = Fingerprint();
  v1::UploadSnapshotResponse again;
  grpc::Status status = Upload(kHolder, held.run_id, held.attempt, 1, false, a, &again);
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(again.path(), first.path());
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  for (const bool final : {false, true}) {
    SCOPED_TRACE(final ? "final" : "not final");
    status = Upload(kHolder, held.run_id, held.attempt, 1, final, b);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(status);
    EXPECT_EQ(Changes(before, Fingerprint()), "");
  }
  EXPECT_EQ(*ReadFileToString((artifacts_ / first.path()).string()), a);

  // The same bytes as final: that snapshot becomes the final image.
  v1::UploadSnapshotResponse final_upload;
  status = Upload(kHolder, held.run_id, held.attempt, 1, true, a, &final_upload);
  ASSERT_TRUE(status.ok()) << Describe(status);
  {
    DatabaseView db(db_path_);
    EXPECT_THAT(db.Rows(absl::StrCat("SELECT step, is_final FROM snapshots WHERE run_id = ", held.run_id)),
                ElementsAre(ElementsAre("1", "1")));
    const std::string final_path = db.Text(absl::StrCat("SELECT final_snapshot FROM runs WHERE id = ", held.run_id));
    EXPECT_EQ(final_path, db.Text(absl::StrCat("SELECT path FROM snapshots WHERE run_id = ", held.run_id)));
    EXPECT_EQ(final_path, final_upload.path());
    EXPECT_EQ(*ReadFileToString((artifacts_ / final_path).string()), a);
  }
  before = Fingerprint();
  EXPECT_TRUE(Upload(kHolder, held.run_id, held.attempt, 1, true, a).ok());
  EXPECT_EQ(Changes(before, Fingerprint()), "");
  ExpectDatabaseSound("after marking a stored snapshot final");

  // A final at a new step is stored as such.
  const Held second = Lease(kHolder);
  v1::UploadSnapshotResponse last;
  ASSERT_TRUE(Upload(kHolder, second.run_id, second.attempt, kSteps, true, b, &last).ok());
  DatabaseView db(db_path_);
  EXPECT_THAT(db.Rows(absl::StrCat("SELECT step, is_final FROM snapshots WHERE run_id = ", second.run_id)),
              ElementsAre(ElementsAre(absl::StrCat(kSteps), "1")));
  EXPECT_EQ(db.Text(absl::StrCat("SELECT final_snapshot FROM runs WHERE id = ", second.run_id)), last.path());
  EXPECT_EQ(*ReadFileToString((artifacts_ / last.path()).string()), b);
}

// ---------------------------------------------------------------- atomicity

// Eight identical CompleteRun(FAILED) calls at once on each of 20 runs (a
// client retrying after timeouts): each run's failure counts once.
TEST_F(ProtocolAbuseTest, ConcurrentRetriedFailuresCountOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(/*quarantine_after=*/0));
  constexpr int kRuns = 20;
  constexpr int kRetries = 8;
  SubmitGrid("retries", kRuns, 2);
  std::vector<Held> held;
  for (int i = 0; i < kRuns; ++i) held.push_back(Lease(kHolder));

  std::atomic<bool> go{false};
  std::vector<grpc::Status> statuses(kRuns * kRetries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns * kRetries; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      const Held& h = held[i / kRetries];
      statuses[i] = Complete(kHolder, h.run_id, h.attempt, "FAILED");
    });
  }
  go.store(true);
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRuns * kRetries; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << "run " << held[i / kRetries].run_id << ": " << Describe(statuses[i]);
  }

  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT failures FROM agents WHERE name = 'holder'"), kRuns);
  EXPECT_EQ(db.Int("SELECT consecutive_failures FROM agents WHERE name = 'holder'"), kRuns);
  EXPECT_EQ(db.Int("SELECT runs_finished FROM agents WHERE name = 'holder'"), kRuns);
  EXPECT_EQ(db.Int("SELECT count(*) FROM attempts"), kRuns);
  EXPECT_EQ(db.Int("SELECT count(*) FROM attempts WHERE state = 'FAILED' AND attempt = 1 AND agent = 'holder'"),
            kRuns);
  EXPECT_EQ(db.Int("SELECT count(*) FROM runs WHERE state = 'FAILED' AND attempt = 1"), kRuns);
}

// A heartbeat whose speed is not a finite number (an agent's first estimate
// can be 0/0) is either taken with the speed cleaned up, or refused as
// INVALID_ARGUMENT changing nothing; never a storage error, never half
// applied.
TEST_F(ProtocolAbuseTest, AHeartbeatWithANonFiniteSpeedIsNotHalfApplied) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  SubmitGrid("speed", 1, 3);
  const Held held = Lease(kHolder);
  for (const double speed : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(absl::StrCat("steps_per_second ", speed));
    LetTheClockTick();
    const std::vector<std::string> before = Fingerprint();
    v1::HeartbeatRequest request;
    request.set_agent(kHolder);
    request.set_run_id(held.run_id);
    request.set_attempt(held.attempt);
    request.set_step(1);
    request.set_steps(3);
    request.set_steps_per_second(speed);
    v1::HeartbeatResponse response;
    grpc::Status status = Call(&v1::Coordinator::Stub::Heartbeat, request, &response);
    EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("constraint")));
    if (status.ok()) {
      EXPECT_FALSE(response.stop_run());
      DatabaseView db(db_path_);
      const std::string stored = db.Text("SELECT steps_per_second FROM agents WHERE name = 'holder'");
      EXPECT_TRUE(std::isfinite(std::atof(stored.c_str()))) << stored;
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
      EXPECT_EQ(Changes(before, Fingerprint()), "");
    }
  }
}

// Uploads of one step at once: of different images exactly one lands (the
// rest are ALREADY_EXISTS) and the file is that one; of the same image
// (retries) every one is OK and one record and file remain.
TEST_F(ProtocolAbuseTest, ConcurrentUploadsOfOneStepKeepOneImage) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 3;
  constexpr int kUploads = 8;
  SubmitGrid("race", 1, kSteps);
  const Held held = Lease(kHolder);
  std::vector<std::string> pngs;
  for (int i = 0; i < kUploads; ++i) pngs.push_back(Png(3, 3, static_cast<uint8_t>(10 + i)));

  // Uploads png(i) at `step` from kUploads threads at once.
  auto race = [&](int step, bool final, const std::function<const std::string&(int)>& png) {
    std::atomic<bool> go{false};
    std::vector<grpc::Status> statuses(kUploads);
    std::vector<v1::UploadSnapshotResponse> responses(kUploads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kUploads; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        statuses[i] = Upload(kHolder, held.run_id, held.attempt, step, final, png(i), &responses[i]);
      });
    }
    go.store(true);
    for (std::thread& t : threads) t.join();
    return std::make_pair(statuses, responses);
  };

  auto [statuses, responses] = race(1, false, [&](int i) -> const std::string& { return pngs[i]; });
  int winner = -1;
  for (int i = 0; i < kUploads; ++i) {
    if (statuses[i].ok()) {
      EXPECT_EQ(winner, -1) << "uploads " << winner << " and " << i << " both landed";
      winner = i;
    } else {
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(statuses[i]);
    }
  }
  ASSERT_NE(winner, -1);
  EXPECT_EQ(*ReadFileToString((artifacts_ / responses[winner].path()).string()), pngs[winner]);
  ExpectDatabaseSound("after racing different images");

  for (const bool final : {false, true}) {
    SCOPED_TRACE(final ? "final" : "not final");
    const int step = final ? kSteps : 2;
    auto [same_statuses, same_responses] = race(step, final, [&](int) -> const std::string& { return pngs[0]; });
    for (int i = 0; i < kUploads; ++i) {
      EXPECT_TRUE(same_statuses[i].ok()) << Describe(same_statuses[i]);
      EXPECT_EQ(same_responses[i].path(), same_responses[0].path());
    }
    EXPECT_EQ(*ReadFileToString((artifacts_ / same_responses[0].path()).string()), pngs[0]);
  }
  DatabaseView db(db_path_);
  EXPECT_THAT(db.Rows(absl::StrCat("SELECT step, is_final FROM snapshots WHERE run_id = ", held.run_id,
                                   " ORDER BY step")),
              ElementsAre(ElementsAre("1", "0"), ElementsAre("2", "0"), ElementsAre(absl::StrCat(kSteps), "1")));
  EXPECT_NE(db.Text(absl::StrCat("SELECT final_snapshot FROM runs WHERE id = ", held.run_id)), "");
}

// ----------------------------------------------------------------- limits

// A grid of 100,000 runs (the documented limit) is stored whole, but no
// reply carries more than a page: SubmitSweep at most 1,000 runs, GetSweep
// pages of at most 5,000 that together list every run once, in order.
TEST_F(ProtocolAbuseTest, AHundredThousandRunGridIsStoredWholeAndRepliedInPages) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kRuns = 100000;
  std::vector<std::string> seeds, weights;
  for (int i = 0; i < 1000; ++i) seeds.push_back(absl::StrCat(i));
  for (int i = 0; i < 100; ++i) weights.push_back(absl::StrCat(0.001 * (i + 1)));
  const std::string yaml = absl::StrCat(
      "name: huge\nmethod: grid\ncontent: content.png\nstyle: style.png\nparameters:\n  seed: {values: [",
      absl::StrJoin(seeds, ", "), "]}\n  style_weight: {values: [", absl::StrJoin(weights, ", "),
      "]}\n  steps: {value: 2}\n  image_size: {value: 32}\n");
  v1::SubmitSweepResponse submitted;
  grpc::Status status = Submit(yaml, {{"content.png", content_png_}, {"style.png", style_png_}}, &submitted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(submitted.runs_total(), kRuns);
  EXPECT_LE(submitted.runs_size(), 1000);
  const std::string sweep = absl::StrCat(submitted.sweep().id());
  {
    DatabaseView db(db_path_);
    EXPECT_EQ(db.Int("SELECT count(*) FROM runs"), kRuns);
    EXPECT_EQ(db.Int("SELECT count(DISTINCT idx) FROM runs"), kRuns);
  }

  std::vector<Held> leased;
  for (int i = 0; i < 3; ++i) leased.push_back(Lease(kHolder));

  // Pages through the sweep's runs in `states`; returns the runs' ids.
  auto page_through = [&](int page_size, const std::vector<std::string>& states, int expected_page) {
    std::vector<int64_t> ids;
    std::set<int64_t> seen;
    int last_index = -1;
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      v1::GetSweepRequest request;
      request.set_sweep(sweep);
      request.set_page_size(page_size);
      request.set_page_token(token);
      for (const std::string& s : states) request.add_states(s);
      v1::GetSweepResponse response;
      grpc::Status s = Call(&v1::Coordinator::Stub::GetSweep, request, &response);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) break;
      EXPECT_LE(response.runs_size(), expected_page);
      for (const v1::RunSummary& run : response.runs()) {
        EXPECT_GT(run.index(), last_index) << "out of expansion order";
        last_index = run.index();
        EXPECT_TRUE(seen.insert(run.id()).second) << "run " << run.id() << " listed twice";
        if (!states.empty()) {
          EXPECT_THAT(states, ::testing::Contains(run.state()));
        }
        ids.push_back(run.id());
      }
      token = response.next_page_token();
      if (token.empty()) break;
    }
    EXPECT_TRUE(token.empty()) << "more than 1000 pages";
    return ids;
  };
  EXPECT_EQ(page_through(5000, {}, 5000).size(), static_cast<size_t>(kRuns));
  {
    // More than 5,000 a page: refused, or 5,000 at most.
    v1::GetSweepRequest request;
    request.set_sweep(sweep);
    request.set_page_size(100000);
    v1::GetSweepResponse response;
    status = Call(&v1::Coordinator::Stub::GetSweep, request, &response);
    if (status.ok()) {
      EXPECT_LE(response.runs_size(), 5000);
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
    }
  }
  {
    // The states filter: the first QUEUED page starts after the leased runs.
    v1::GetSweepRequest request;
    request.set_sweep(sweep);
    request.set_page_size(10);
    request.add_states("QUEUED");
    v1::GetSweepResponse response;
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, request, &response).ok());
    ASSERT_EQ(response.runs_size(), 10);
    EXPECT_EQ(response.runs(0).index(), 3);
    EXPECT_EQ(response.runs(0).state(), "QUEUED");
    EXPECT_FALSE(response.next_page_token().empty());
  }
  std::vector<int64_t> running = page_through(0, {"RUNNING"}, 1000);
  std::vector<int64_t> expected_running;
  for (const Held& h : leased) expected_running.push_back(h.run_id);
  EXPECT_EQ(running, expected_running);
  EXPECT_THAT(page_through(0, {"SUCCEEDED", "FAILED"}, 1000), IsEmpty());
  {
    v1::GetSweepRequest request;  // page_size 0: 1,000
    request.set_sweep(sweep);
    v1::GetSweepResponse response;
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, request, &response).ok());
    EXPECT_EQ(response.runs_size(), 1000);
    EXPECT_FALSE(response.next_page_token().empty());
    ASSERT_EQ(response.sweeps_size(), 1);
    EXPECT_FALSE(response.sweeps(0).spec_json().empty());  // one sweep always carries it
    request.set_no_runs(true);
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, request, &response).ok());
    EXPECT_EQ(response.runs_size(), 0);
    ASSERT_EQ(response.sweeps_size(), 1);
    EXPECT_EQ(RunsIn(response.sweeps(0).runs_by_state(), "QUEUED"), kRuns - 3);
    EXPECT_EQ(RunsIn(response.sweeps(0).runs_by_state(), "RUNNING"), 3);
  }
  {
    // Every sweep: summaries only, the spec only when asked for.
    v1::GetSweepRequest request;
    v1::GetSweepResponse response;
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, request, &response).ok());
    ASSERT_EQ(response.sweeps_size(), 1);
    EXPECT_EQ(response.runs_size(), 0);
    EXPECT_EQ(response.sweeps(0).spec_json(), "");
    EXPECT_EQ(RunsIn(response.sweeps(0).runs_by_state(), "QUEUED"), kRuns - 3);
    request.set_with_spec(true);
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, request, &response).ok());
    ASSERT_EQ(response.sweeps_size(), 1);
    EXPECT_FALSE(response.sweeps(0).spec_json().empty());
  }
  // One more run than the limit is refused, and stores nothing.
  seeds.push_back("1000");
  const std::string too_big = absl::StrCat(
      "name: too-big\nmethod: grid\ncontent: content.png\nstyle: style.png\nparameters:\n  seed: {values: [",
      absl::StrJoin(seeds, ", "), "]}\n  style_weight: {values: [", absl::StrJoin(weights, ", "),
      "]}\n  steps: {value: 2}\n");
  status = Submit(too_big, {{"content.png", content_png_}, {"style.png", style_png_}}, &submitted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT count(*) FROM sweeps"), 1);
  EXPECT_EQ(db.Int("SELECT count(*) FROM runs"), kRuns);
}

// Users see every run however the replies are paged: `stylesweep status
// SWEEP` through the coordinator counts all of a sweep's runs, not its first
// page's.
TEST_F(ProtocolAbuseTest, StatusThroughTheCoordinatorCountsEveryRun) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kRuns = 2500;  // two and a half default pages
  SubmitGrid("paged", kRuns, 2);
  const Held held = Lease(kHolder);
  ASSERT_TRUE(ReportSteps(held, 0, 1).ok());
  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << kToken << "\n";
  std::string output;
  ASSERT_EQ(testing::RunCommand({std::string(STYLESWEEP_BIN_DIR) + "/stylesweep", "status", "paged",
                                 "--coordinator", server_->address(), "--token-file", token_file},
                                &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr(absl::StrCat(kRuns, " runs")));
  EXPECT_THAT(output, HasSubstr(absl::StrCat(kRuns - 1, " QUEUED")));
  EXPECT_THAT(output, HasSubstr(absl::StrCat("1 of ", 2 * kRuns, " steps")));
}

// A YAML over 1 MiB, an image over 32 MiB, images over 48 MiB together and
// a snapshot over 32 MiB are INVALID_ARGUMENT naming the limit, and nothing
// is stored.
TEST_F(ProtocolAbuseTest, OversizedRequestsAreRefusedBeforeAnythingIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr size_t kMiB = 1 << 20;
  const std::map<std::string, std::string> images = {{"content.png", content_png_}, {"style.png", style_png_}};
  auto yaml_of_size = [&](size_t size) {
    std::string yaml = GridYaml("big-yaml", 1, 2);
    std::string comment = "# ";
    comment.resize(size - yaml.size() - 1, 'x');
    return yaml + comment + "\n";
  };
  const std::vector<std::string> before = Fingerprint();
  v1::SubmitSweepResponse response;
  grpc::Status status = Submit(yaml_of_size(kMiB + 1), images, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("1 MiB"));
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  status = Submit(GridYaml("big-image", 1, 2), {{"content.png", LargePng(32 * kMiB + 1)}, {"style.png", style_png_}},
                  &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("32 MiB"));
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  status = Submit(GridYaml("big-images", 1, 2),
                  {{"content.png", LargePng(24 * kMiB + 1)}, {"style.png", LargePng(24 * kMiB)}}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("48 MiB"));
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  // Just within the limits: stored.
  status = Submit(yaml_of_size(kMiB), images, &response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  const Held held = Lease(kHolder);
  const std::vector<std::string> with_sweep = Fingerprint();
  status = Upload(kHolder, held.run_id, held.attempt, 1, false, LargePng(32 * kMiB + 1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), ::testing::AnyOf(HasSubstr("32 MiB"), HasSubstr("33554432")));
  EXPECT_EQ(Changes(with_sweep, Fingerprint()), "");
  status = Upload(kHolder, held.run_id, held.attempt, 1, false, LargePng(32 * kMiB));
  EXPECT_TRUE(status.ok()) << Describe(status);
}

// Images are what agents decode: a blob that is not a PNG or JPEG, or one
// whose header declares more pixels than kMaxImagePixels (a pixel bomb,
// small on the wire, gigabytes decoded), is INVALID_ARGUMENT naming the
// image, and nothing is stored, dry run or not.
TEST_F(ProtocolAbuseTest, SubmittedImagesMustBePngsOrJpegsWithinThePixelLimit) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  SubmitGrid("before", 1, 2);  // something stored, to stay as it is
  const std::string bomb = testing::PngDeclaring(15000, 15000);
  ASSERT_LT(bomb.size(), 100u);
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> refused = {
      {{{"content.png", "#!/bin/sh\necho not an image\n"}, {"style.png", style_png_}},
       "abuse.yaml: image 'content.png': not a PNG or JPEG: the first bytes are 23 21 2f 62 69 6e 2f 73 "
       "(\"#!/bin/s\"); a PNG starts with 89 50 4e 47, a JPEG with ff d8"},
      {{{"content.png", content_png_}, {"style.png", bomb}},
       "abuse.yaml: image 'style.png' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi "
       "pixels (67108864, e.g. 8192x8192)"},
      {{{"content.png", testing::JpegDeclaring(65535, 65535)}, {"style.png", style_png_}},
       "abuse.yaml: image 'content.png' declares 65535x65535 pixels (4294836225); an image may have at most 64 Mi "
       "pixels (67108864, e.g. 8192x8192)"},
      // Named by no key of the sweep: refused all the same.
      {{{"content.png", content_png_}, {"style.png", style_png_}, {"extra.png", "GIF89a"}},
       "abuse.yaml: image 'extra.png': not a PNG or JPEG: the first bytes are 47 49 46 38 39 61 (\"GIF89a\"), a GIF "
       "image; a PNG starts with 89 50 4e 47, a JPEG with ff d8"},
  };
  for (const bool dry_run : {false, true}) {
    for (const auto& [files, message] : refused) {
      SCOPED_TRACE(absl::StrCat(message, dry_run ? " (dry run)" : ""));
      const std::vector<std::string> before = Fingerprint();
      v1::SubmitSweepRequest request;
      request.set_yaml(GridYaml("refused", 1, 2));
      request.set_source("abuse.yaml");
      request.set_dry_run(dry_run);
      for (const auto& [path, data] : files) {
        v1::FileBlob* file = request.add_files();
        file->set_path(path);
        file->set_data(data);
      }
      v1::SubmitSweepResponse response;
      grpc::Status status = Call(&v1::Coordinator::Stub::SubmitSweep, request, &response);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
      EXPECT_EQ(status.error_message(), message);
      EXPECT_EQ(Changes(before, Fingerprint()), "");
    }
  }
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT count(*) FROM sweeps"), 1);
}

// A snapshot must be a PNG within kMaxImagePixels too: reports and the
// dashboard decode it. Refused with no file and no snapshot row.
TEST_F(ProtocolAbuseTest, SnapshotsDeclaringTooManyPixelsAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 2;
  SubmitGrid("bombs", 1, kSteps);
  const Held held = Lease(kHolder);
  const std::vector<std::string> before = Fingerprint();
  for (const bool final : {false, true}) {
    grpc::Status status = Upload(kHolder, held.run_id, held.attempt, 1, final, testing::PngDeclaring(15000, 15000));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
    EXPECT_EQ(status.error_message(),
              absl::StrCat("run ", held.run_id, " step 1: the snapshot declares 15000x15000 pixels (225000000); an "
                           "image may have at most 64 Mi pixels (67108864, e.g. 8192x8192)"));
    status = Upload(kHolder, held.run_id, held.attempt, 1, final, "%PDF-1.7\n");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
    EXPECT_THAT(status.error_message(), HasSubstr("a snapshot must be a PNG image: not a PNG or JPEG"));
  }
  EXPECT_EQ(Changes(before, Fingerprint()), "");
  DatabaseView db(db_path_);
  EXPECT_EQ(db.Int("SELECT count(*) FROM snapshots"), 0);
  for (const auto& [path, digest] : Files(artifacts_, /*digests=*/false)) {
    EXPECT_EQ(path.rfind("blobs/", 0), 0u) << path << " was written";
  }
  // At the limit: stored.
  EXPECT_TRUE(Upload(kHolder, held.run_id, held.attempt, 1, false, testing::PngDeclaring(8192, 8192)).ok());
}

// ------------------------------------------------------------------ delete

TEST_F(ProtocolAbuseTest, DeleteSweepRemovesWhatItOwnsAndKeepsSharedImages) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kSteps = 2;
  const std::string style_a = Png(4, 4, 111);
  const std::string style_b = Png(4, 4, 222);
  v1::SubmitSweepResponse a_response, b_response;
  ASSERT_TRUE(Submit(GridYaml("doomed", 2, kSteps), {{"content.png", content_png_}, {"style.png", style_a}},
                     &a_response)
                  .ok());
  ASSERT_TRUE(Submit(GridYaml("kept", 1, kSteps), {{"content.png", content_png_}, {"style.png", style_b}},
                     &b_response)
                  .ok());
  const int64_t a = a_response.sweep().id();
  const int64_t b = b_response.sweep().id();
  auto blob = [&](const std::string& data) {
    const std::string hex = Sha256Hex(data);
    return artifacts_ / "blobs" / hex.substr(0, 2) / hex;
  };
  ASSERT_TRUE(fs::exists(blob(content_png_)));
  ASSERT_TRUE(fs::exists(blob(style_a)));

  // Sweep "doomed": one run done with losses and snapshots, one RUNNING.
  const Held done = Lease(kHolder);
  ASSERT_EQ(done.sweep_id, a);
  ASSERT_TRUE(ReportSteps(done, 0, kSteps).ok());
  const std::string snapshot = Png(2, 2, 3);
  ASSERT_TRUE(Upload(kHolder, done.run_id, done.attempt, 1, false, snapshot).ok());
  ASSERT_TRUE(Upload(kHolder, done.run_id, done.attempt, kSteps, true, snapshot).ok());
  ASSERT_TRUE(Complete(kHolder, done.run_id, done.attempt, "SUCCEEDED").ok());
  const Held running = Lease(kOther);
  ASSERT_EQ(running.sweep_id, a);
  ASSERT_TRUE(Report(kOther, running.run_id, running.attempt, {Loss(0)}).ok());
  const fs::path sweep_dir = artifacts_ / ArtifactStore::SweepDir(a, "doomed");
  ASSERT_TRUE(fs::exists(sweep_dir));

  std::vector<std::string> before = Fingerprint();
  grpc::Status status = Delete("doomed", /*cancel_first=*/false);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(status);
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  auto rows_of_sweep_b = [&] {
    DatabaseView db(db_path_);
    return db.Rows(absl::StrCat("SELECT * FROM runs WHERE sweep_id = ", b));
  };
  const auto b_before = rows_of_sweep_b();
  v1::DeleteSweepResponse deleted;
  status = Delete("doomed", /*cancel_first=*/true, &deleted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(deleted.sweep_id(), a);
  EXPECT_EQ(deleted.name(), "doomed");
  EXPECT_EQ(deleted.runs(), 2);
  EXPECT_EQ(deleted.metric_rows(), kSteps + 2);
  EXPECT_EQ(deleted.blobs_removed(), 1);
  EXPECT_GE(deleted.bytes_freed(), static_cast<int64_t>(style_a.size() + 2 * snapshot.size()));

  {
    DatabaseView db(db_path_);
    const std::string runs = absl::StrCat("(", done.run_id, ", ", running.run_id, ")");
    EXPECT_EQ(db.Int(absl::StrCat("SELECT count(*) FROM sweeps WHERE id = ", a)), 0);
    EXPECT_EQ(db.Int(absl::StrCat("SELECT count(*) FROM runs WHERE sweep_id = ", a)), 0);
    for (const char* table : {"attempts", "metrics", "snapshots", "run_avoids_agent"}) {
      EXPECT_EQ(db.Int(absl::StrCat("SELECT count(*) FROM ", table, " WHERE run_id IN ", runs)), 0) << table;
    }
  }
  EXPECT_EQ(rows_of_sweep_b(), b_before);
  EXPECT_FALSE(fs::exists(sweep_dir));
  EXPECT_FALSE(fs::exists(blob(style_a)));
  EXPECT_TRUE(fs::exists(blob(content_png_))) << "shared with sweep 'kept'";
  EXPECT_TRUE(fs::exists(blob(style_b)));
  ExpectDatabaseSound("after deleting 'doomed'");

  // Gone for users and for the agent that held one of its runs.
  v1::GetSweepRequest get;
  get.set_sweep("doomed");
  v1::GetSweepResponse got;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::GetSweep, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  before = Fingerprint();
  EXPECT_FALSE(Report(kOther, running.run_id, running.attempt, {Loss(1)}).ok());
  EXPECT_FALSE(Upload(kOther, running.run_id, running.attempt, 1, false, snapshot).ok());
  EXPECT_EQ(Changes(before, Fingerprint()), "");

  // The other sweep, once cancelled, goes without cancel_first, and takes
  // the last images with it.
  ASSERT_TRUE(Control("kept", v1::ControlSweepRequest::CANCEL).ok());
  status = Delete(absl::StrCat(b), /*cancel_first=*/false, &deleted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(deleted.runs(), 1);
  EXPECT_EQ(deleted.blobs_removed(), 2);
  EXPECT_THAT(Files(artifacts_), IsEmpty());
  DatabaseView db(db_path_);
  for (const char* table : {"sweeps", "runs", "attempts", "metrics", "snapshots"}) {
    EXPECT_EQ(db.Int(absl::StrCat("SELECT count(*) FROM ", table)), 0) << table;
  }
}

}  // namespace
}  // namespace stylesweep
