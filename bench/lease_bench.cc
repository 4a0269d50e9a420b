// Whether what an agent or a user asks of the coordinator costs more as
// history piles up. Prints a table:
//   - LeaseRun and Heartbeat latency (p50, p99) with 1, 100 and 10,000
//     finished sweeps stored (and with 1, again with a scoped agent token on
//     every call: what authentication costs), beside two paused sweeps with descriptions of
//     about 1 MB and 10,000 queued runs each, whose runs sit ahead of the
//     ones being leased; and the ratio of the medians at 10,000 and at 1
//     (the goal: at most 2x);
//   - GetSweep of one sweep of 100,000 runs: its first page, and every page;
//   - GetSweep of every sweep and `stylesweep status` (the built binary,
//     against the coordinator and against the database file) with 10,000
//     sweeps stored.
//
// The databases are written through the Store (no RPCs) once, kept under
// --dir and copied before each use, since leasing changes them. The
// coordinator runs in this process on a loopback port and is called through
// a real gRPC channel, one call at a time. Its logging is set to warnings:
// the table stays readable, and log lines are not what is measured.
//
//   lease_bench [--dir DIR] [--rebuild] [--samples N] [--stylesweep PATH]

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/run_params.h"
#include "common/sweep_spec.h"
#include "coordinator/auth/credentials.h"
#include "coordinator/server.h"
#include "coordinator/store/store.h"
#include "rpc/transport.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kStartMs = 1700000000000;
constexpr int kRunsPerFinishedSweep = 2;
constexpr int kFinishedSteps = 10;
constexpr int kPausedSweeps = 2;
constexpr int kRunsPerPausedSweep = 10000;
constexpr int kDescriptionBytes = 1000000;  // within the 1 MiB a sweep's YAML may have
constexpr int kWarmup = 50;
constexpr int kGridRuns = 100000;
constexpr int64_t kCallTimeoutMs = 120000;

double MicrosSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count();
}

[[noreturn]] void Die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "lease_bench: %s: %s\n", what.c_str(), why.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> result, const std::string& what) {
  if (!result.ok()) Die(what, std::string(result.status().message()));
  return *std::move(result);
}

void Must(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Die(what, std::string(status.message()));
}

// ------------------------------------------------------------ databases

std::string SweepYaml(const std::string& name, int runs, const std::string& description) {
  std::vector<std::string> weights;
  for (int i = 0; i < runs; ++i) weights.push_back(absl::StrCat(0.001 * (i + 1)));
  std::string yaml = absl::StrCat("name: ", name, "\nmethod: grid\n");
  if (!description.empty()) absl::StrAppend(&yaml, "description: ", description, "\n");
  absl::StrAppend(&yaml, "content: images/cat.png\nstyle: images/starry_night.jpg\nparameters:\n",
                  "  style_weight: {values: [", absl::StrJoin(weights, ", "), "]}\n",
                  "  steps: {value: ", kFinishedSteps, "}\n  image_size: {value: 256}\n");
  return yaml;
}

// A sweep as the scheduler would store it (its YAML, its validated spec),
// with `runs` runs.
NewSweep MakeSweep(const std::string& name, int runs, const std::string& description = "") {
  NewSweep sweep;
  sweep.name = name;
  sweep.source = name + ".yaml";
  // The YAML's grid is kept small: the runs stored are what counts.
  sweep.yaml = SweepYaml(name, std::min(runs, 10), description);
  SweepSpec spec = Must(ParseSweep(sweep.yaml, sweep.source), "parse " + name);
  nlohmann::json spec_json = spec.ToJson();
  spec_json["images"] = {{"sha256:" + std::string(64, 'a'), "images/cat.png"},
                         {"sha256:" + std::string(64, 'b'), "images/starry_night.jpg"}};
  spec_json["weights_paths"] = nlohmann::json::object();
  spec_json["artifacts_dir"] = "/srv/stylesweep/artifacts";
  spec_json["search_seed"] = 1;
  sweep.spec_json = spec_json.dump();
  sweep.created_ms = kStartMs;
  sweep.draws = runs;
  return sweep;
}

std::vector<NewRun> MakeRuns(int count) {
  std::vector<NewRun> runs;
  runs.reserve(count);
  for (int i = 0; i < count; ++i) {
    RunParams params;
    params.content = "sha256:" + std::string(64, 'a');
    params.style = {"sha256:" + std::string(64, 'b')};
    params.style_weight = 1e-3 * (1 + i % 1000);
    params.seed = static_cast<uint64_t>(i / 1000);
    params.steps = kFinishedSteps;
    params.image_size = 256;
    runs.push_back(NewRun{i, params.ToJson().dump(), params.Hash(), ""});
  }
  return runs;
}

// `finished` finished sweeps (each run with its losses), two paused sweeps
// with ~1 MB descriptions and many queued runs, then the sweep whose
// `live_runs` runs the benchmark leases.
void BuildHistory(const std::string& path, int finished, int live_runs) {
  auto store = Must(OpenSqliteStore(path), "open " + path);
  std::vector<MetricRow> rows;
  for (int s = 0; s <= kFinishedSteps; ++s) {
    const double total = 100.0 / (1 + s);
    rows.push_back(MetricRow{s, total * 0.5, total * 0.4, total * 0.1, total, 0.05});
  }
  const std::vector<NewRun> finished_runs = MakeRuns(kRunsPerFinishedSweep);
  for (int i = 0; i < finished; ++i) {
    Must(store->CreateSweep(MakeSweep(absl::StrCat("done-", i), kRunsPerFinishedSweep), finished_runs),
         "create sweep");
    for (int r = 0; r < kRunsPerFinishedSweep; ++r) {
      const int64_t now = kStartMs + 1000LL * (i * kRunsPerFinishedSweep + r);
      auto lease = Must(store->ClaimNextRun(absl::StrCat("gpu-", i % 8), now, now + 60000), "claim");
      if (!lease.has_value()) Die("claim", "nothing queued");
      Must(store->AppendMetrics(lease->run.id, lease->attempt, rows), "metrics");
      Must(store->FinishRun(lease->run.id, lease->attempt, RunState::kSucceeded, "", now + 500), "finish");
    }
    if ((i + 1) % 1000 == 0) std::fprintf(stderr, "  %d of %d finished sweeps written\n", i + 1, finished);
  }
  const std::string description(kDescriptionBytes, 'd');
  for (int p = 0; p < kPausedSweeps; ++p) {
    const int64_t id = Must(store->CreateSweep(MakeSweep(absl::StrCat("paused-", p), kRunsPerPausedSweep, description),
                                               MakeRuns(kRunsPerPausedSweep)),
                            "create paused sweep");
    Must(store->SetSweepPaused(id, true), "pause");
  }
  Must(store->CreateSweep(MakeSweep("live", live_runs), MakeRuns(live_runs)), "create live sweep");
}

void BuildGrid(const std::string& path) {
  auto store = Must(OpenSqliteStore(path), "open " + path);
  Must(store->CreateSweep(MakeSweep("grid", kGridRuns), MakeRuns(kGridRuns)), "create grid");
}

// The pristine database at `path`, built when missing (or asked to).
void Ensure(const std::string& path, bool rebuild, const std::string& what, const std::function<void()>& build) {
  if (!rebuild && fs::exists(path)) return;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  std::fprintf(stderr, "building %s (%s)...\n", path.c_str(), what.c_str());
  const auto start = SteadyClock::now();
  build();
  std::fprintf(stderr, "  built in %.1f s\n", MicrosSince(start) / 1e6);
}

// A fresh copy of a pristine database, for one measurement to change.
std::string WorkingCopy(const std::string& pristine, const fs::path& dir) {
  const std::string copy = (dir / ("work-" + fs::path(pristine).filename().string())).string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(copy + suffix);
  for (const char* suffix : {"", "-wal"}) {
    if (fs::exists(pristine + suffix)) fs::copy_file(pristine + suffix, copy + suffix);
  }
  return copy;
}

// ------------------------------------------------------------- the server

struct Running {
  std::unique_ptr<CoordinatorServer> server;
  std::unique_ptr<v1::Coordinator::Stub> stub;
};

Running Start(const std::string& db, const fs::path& artifacts) {
  CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.db = db;
  config.artifacts = artifacts.string();
  config.scheduler.lease_ms = 3600000;  // nothing expires while measuring
  config.scheduler.quarantine_after = 0;
  Running running;
  running.server = Must(CoordinatorServer::Start(config), "start the coordinator on " + db);
  running.stub = v1::Coordinator::NewStub(
      Must(MakeChannel(running.server->address(), ClientSecurity{}), "channel"));
  return running;
}

// The token calls carry (empty: none, an open loopback coordinator).
std::string g_token;

// Makes a scoped agent token for "bench-agent" in `db`, so the coordinator
// started on it checks every call against the credentials table.
std::string CreateAgentToken(const std::string& db) {
  std::unique_ptr<Store> store = Must(OpenSqliteStore(db), "open " + db);
  NewCredential made = Must(MakeCredential("bench-host", "agent", "bench-agent", kStartMs), "make a credential");
  const int64_t id = Must(store->CreateCredential(made.record), "store a credential");
  return FormatToken(id, made.secret);
}

template <typename Request, typename Response>
grpc::Status Call(v1::Coordinator::Stub& stub,
                  grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  ClientSecurity security;
  security.token = g_token;
  PrepareContext(context, security, kCallTimeoutMs);
  return (stub.*method)(&context, request, response);
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles Summarise(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[std::min(micros.size() - 1, static_cast<size_t>(q * micros.size()))]; };
  return Percentiles{at(0.5), at(0.99)};
}

struct LeaseRow {
  int finished = 0;
  Percentiles lease, heartbeat;
};

// `samples` rounds (after a warm-up) of: LeaseRun (timed), Heartbeat on the
// run it granted (timed), CompleteRun CANCELLED (not timed), so one run at a
// time is RUNNING, as with one agent.
LeaseRow MeasureLeases(v1::Coordinator::Stub& stub, int finished, int samples) {
  v1::RegisterAgentRequest registration;
  registration.set_name("bench-agent");
  registration.set_host("127.0.0.1");
  registration.set_device("cpu");
  v1::RegisterAgentResponse registered;
  grpc::Status status = Call(stub, &v1::Coordinator::Stub::RegisterAgent, registration, &registered);
  if (!status.ok()) Die("RegisterAgent", status.error_message());

  std::vector<double> lease_us, heartbeat_us;
  for (int i = 0; i < kWarmup + samples; ++i) {
    v1::LeaseRunRequest lease_request;
    lease_request.set_agent("bench-agent");
    v1::LeaseRunResponse lease;
    auto start = SteadyClock::now();
    status = Call(stub, &v1::Coordinator::Stub::LeaseRun, lease_request, &lease);
    const double lease_time = MicrosSince(start);
    if (!status.ok()) Die("LeaseRun", status.error_message());
    if (!lease.granted()) Die("LeaseRun", absl::StrCat("no run granted at round ", i));

    v1::HeartbeatRequest heartbeat_request;
    heartbeat_request.set_agent("bench-agent");
    heartbeat_request.set_run_id(lease.run_id());
    heartbeat_request.set_attempt(lease.attempt());
    heartbeat_request.set_step(1);
    heartbeat_request.set_steps(kFinishedSteps);
    heartbeat_request.set_steps_per_second(10);
    v1::HeartbeatResponse heartbeat;
    start = SteadyClock::now();
    status = Call(stub, &v1::Coordinator::Stub::Heartbeat, heartbeat_request, &heartbeat);
    const double heartbeat_time = MicrosSince(start);
    if (!status.ok()) Die("Heartbeat", status.error_message());

    v1::CompleteRunRequest complete;
    complete.set_agent("bench-agent");
    complete.set_run_id(lease.run_id());
    complete.set_attempt(lease.attempt());
    complete.set_state("CANCELLED");
    v1::CompleteRunResponse completed;
    status = Call(stub, &v1::Coordinator::Stub::CompleteRun, complete, &completed);
    if (!status.ok()) Die("CompleteRun CANCELLED", status.error_message());
    if (i >= kWarmup) {
      lease_us.push_back(lease_time);
      heartbeat_us.push_back(heartbeat_time);
    }
  }
  return LeaseRow{finished, Summarise(lease_us), Summarise(heartbeat_us)};
}

struct Timed {
  std::string what;
  double ms = 0;
  std::string note;
};

// GetSweep of one sweep of 100,000 runs: the first page as the CLI asks for
// it, then every page of 5,000.
std::vector<Timed> MeasureGrid(v1::Coordinator::Stub& stub) {
  std::vector<Timed> out;
  {
    v1::GetSweepRequest request;
    request.set_sweep("grid");
    v1::GetSweepResponse response;
    const auto start = SteadyClock::now();
    grpc::Status status = Call(stub, &v1::Coordinator::Stub::GetSweep, request, &response);
    const double ms = MicrosSince(start) / 1000;
    out.push_back({"GetSweep grid, first page (page_size 0)", ms,
                   status.ok() ? absl::StrCat(response.runs_size(), " runs, ", response.ByteSizeLong(),
                                              " bytes, next_page_token ",
                                              response.next_page_token().empty() ? "empty" : "set")
                               : absl::StrCat("error ", status.error_code(), ": ", status.error_message())});
  }
  {
    std::string token;
    size_t bytes = 0, largest = 0;
    int runs = 0, pages = 0;
    std::string error;
    const auto start = SteadyClock::now();
    do {
      v1::GetSweepRequest request;
      request.set_sweep("grid");
      request.set_page_size(5000);
      request.set_page_token(token);
      v1::GetSweepResponse response;
      grpc::Status status = Call(stub, &v1::Coordinator::Stub::GetSweep, request, &response);
      if (!status.ok()) {
        error = absl::StrCat("error ", status.error_code(), ": ", status.error_message());
        break;
      }
      ++pages;
      runs += response.runs_size();
      bytes += response.ByteSizeLong();
      largest = std::max(largest, response.ByteSizeLong());
      token = response.next_page_token();
    } while (!token.empty() && pages < 1000);
    const double ms = MicrosSince(start) / 1000;
    out.push_back({"GetSweep grid, every page (page_size 5000)", ms,
                   error.empty() ? absl::StrCat(runs, " runs in ", pages, " pages, ", bytes, " bytes (largest ",
                                                largest, ")")
                                 : error});
  }
  return out;
}

// Runs a command; returns its exit status, and its output in *output.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  output->clear();
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The best of three: what the command costs, not what else the machine did.
Timed TimeCommand(const std::string& what, const std::string& command) {
  double best = 0;
  std::string output;
  int code = 0;
  for (int i = 0; i < 3; ++i) {
    const auto start = SteadyClock::now();
    code = RunCommand(command, &output);
    const double ms = MicrosSince(start) / 1000;
    if (i == 0 || ms < best) best = ms;
  }
  const size_t lines = std::count(output.begin(), output.end(), '\n');
  return Timed{what, best,
               code == 0 ? absl::StrCat(lines, " lines, ", output.size(), " bytes")
                         : absl::StrCat("exit ", code, ": ", output.substr(0, 200))};
}

std::vector<Timed> MeasureListing(v1::Coordinator::Stub& stub, const std::string& address, const std::string& db,
                                  const std::string& stylesweep) {
  std::vector<Timed> out;
  v1::GetSweepRequest request;
  v1::GetSweepResponse response;
  const auto start = SteadyClock::now();
  grpc::Status status = Call(stub, &v1::Coordinator::Stub::GetSweep, request, &response);
  const double ms = MicrosSince(start) / 1000;
  out.push_back({"GetSweep, every sweep", ms,
                 status.ok() ? absl::StrCat(response.sweeps_size(), " sweeps, ", response.ByteSizeLong(), " bytes")
                             : absl::StrCat("error ", status.error_code(), ": ", status.error_message())});
  out.push_back(TimeCommand("stylesweep status --coordinator",
                            absl::StrCat(Quote(stylesweep), " status --coordinator ", address)));
  out.push_back(TimeCommand("stylesweep status --db", absl::StrCat(Quote(stylesweep), " status --db ", Quote(db))));
  return out;
}

// ----------------------------------------------------------- the machine

std::string MachineLine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU", flags;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && model == "unknown CPU") model = value;
    if (key == "flags" && flags.empty()) flags = " " + value + " ";
  }
  auto has = [&](const char* flag) { return flags.find(absl::StrCat(" ", flag, " ")) != std::string::npos; };
  std::string line_out = absl::StrCat("CPU: ", model, ", ", std::thread::hardware_concurrency(), " threads; flags:");
  for (const char* flag : {"avx2", "avx512f", "avx512_bf16"}) {
    absl::StrAppend(&line_out, " ", flag, has(flag) ? "" : " (no)");
  }
  return line_out;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

std::string SelfDir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : self.parent_path().string();
}

}  // namespace
}  // namespace stylesweep

int main(int argc, char** argv) {
  using namespace stylesweep;
  fs::path dir = "lease-bench";
  bool rebuild = false;
  int samples = 1000;
  std::string stylesweep = SelfDir() + "/stylesweep";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "lease_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--dir") {
      dir = value();
    } else if (arg == "--rebuild") {
      rebuild = true;
    } else if (arg == "--samples") {
      samples = std::atoi(value().c_str());
    } else if (arg == "--stylesweep") {
      stylesweep = value();
    } else {
      std::fprintf(stderr, "usage: lease_bench [--dir DIR] [--rebuild] [--samples N] [--stylesweep PATH]\n");
      return 2;
    }
  }
  if (samples < 10) {
    std::fprintf(stderr, "lease_bench: --samples must be at least 10\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  fs::create_directories(dir);
  const fs::path artifacts = dir / "artifacts";
  const std::string load_before = LoadAverage();
  // Enough live runs for every round, whatever --samples was when the
  // database was built.
  const int live_runs = std::max(samples + kWarmup, 20000);
  if (samples + kWarmup > 20000) rebuild = true;

  std::vector<LeaseRow> rows;
  LeaseRow token_row;
  std::vector<Timed> listing;
  for (const int finished : {1, 100, 10000}) {
    const std::string pristine = (dir / absl::StrCat("history-", finished, ".db")).string();
    Ensure(pristine, rebuild, absl::StrCat(finished, " finished sweeps"),
           [&] { BuildHistory(pristine, finished, live_runs); });
    const std::string db = WorkingCopy(pristine, dir);
    Running running = Start(db, artifacts);
    rows.push_back(MeasureLeases(*running.stub, finished, samples));
    std::fprintf(stderr, "  %d finished sweeps: measured\n", finished);
    if (finished == 10000) listing = MeasureListing(*running.stub, running.server->address(), db, stylesweep);
    running.server->Shutdown();
    if (finished == 1) {
      // The same, with every call authenticated by a scoped agent token:
      // what the credentials table and the role check cost a call.
      const std::string with_token = WorkingCopy(pristine, dir);
      g_token = CreateAgentToken(with_token);
      Running authenticated = Start(with_token, artifacts);
      token_row = MeasureLeases(*authenticated.stub, finished, samples);
      authenticated.server->Shutdown();
      g_token.clear();
      std::fprintf(stderr, "  %d finished sweep, agent token: measured\n", finished);
    }
  }
  const std::string grid = (dir / "grid-100000.db").string();
  Ensure(grid, rebuild, "one sweep of 100,000 runs", [&] { BuildGrid(grid); });
  std::vector<Timed> grid_timings;
  {
    const std::string db = WorkingCopy(grid, dir);
    Running running = Start(db, artifacts);
    grid_timings = MeasureGrid(*running.stub);
    grid_timings.push_back(TimeCommand("stylesweep status grid --coordinator",
                                       absl::StrCat(Quote(stylesweep), " status grid --coordinator ",
                                                    running.server->address())));
    grid_timings.push_back(
        TimeCommand("stylesweep status grid --db", absl::StrCat(Quote(stylesweep), " status grid --db ", Quote(db))));
    running.server->Shutdown();
  }

  std::printf("\n%s\n", MachineLine().c_str());
  std::printf("load average: %s before, %s after\n", load_before.c_str(), LoadAverage().c_str());
  std::printf("%d rounds after %d of warm-up; each finished sweep has %d runs of %d steps; plus %d paused sweeps "
              "with %d-byte descriptions and %d queued runs each\n\n",
              samples, kWarmup, kRunsPerFinishedSweep, kFinishedSteps + 1, kPausedSweeps, kDescriptionBytes,
              kRunsPerPausedSweep);
  std::printf("%-16s %14s %14s %14s %14s\n", "finished sweeps", "LeaseRun p50", "LeaseRun p99", "Heartbeat p50",
              "Heartbeat p99");
  for (const LeaseRow& row : rows) {
    std::printf("%-16d %11.0f us %11.0f us %11.0f us %11.0f us\n", row.finished, row.lease.p50, row.lease.p99,
                row.heartbeat.p50, row.heartbeat.p99);
  }
  const LeaseRow& first = rows.front();
  const LeaseRow& last = rows.back();
  const double lease_ratio = last.lease.p50 / first.lease.p50;
  const double heartbeat_ratio = last.heartbeat.p50 / first.heartbeat.p50;
  std::printf("p50 @ 10000 / p50 @ 1: LeaseRun %.2fx %s, Heartbeat %.2fx %s (goal: at most 2x)\n", lease_ratio,
              lease_ratio <= 2 ? "ok" : "OVER", heartbeat_ratio, heartbeat_ratio <= 2 ? "ok" : "OVER");
  std::printf("%-16s %11.0f us %11.0f us %11.0f us %11.0f us\n", "1, agent token", token_row.lease.p50,
              token_row.lease.p99, token_row.heartbeat.p50, token_row.heartbeat.p99);
  std::printf("agent token / none @ 1: LeaseRun p50 %.2fx, Heartbeat p50 %.2fx\n\n", token_row.lease.p50 / first.lease.p50,
              token_row.heartbeat.p50 / first.heartbeat.p50);

  std::printf("%-46s %12s  %s\n", "one sweep of 100,000 runs", "time", "");
  for (const Timed& t : grid_timings) std::printf("%-46s %9.1f ms  %s\n", t.what.c_str(), t.ms, t.note.c_str());
  std::printf("\n%-46s %12s  %s\n", "10,000 finished sweeps (+2 paused, 1 live)", "time", "");
  for (const Timed& t : listing) std::printf("%-46s %9.1f ms  %s\n", t.what.c_str(), t.ms, t.note.c_str());
  return 0;
}
