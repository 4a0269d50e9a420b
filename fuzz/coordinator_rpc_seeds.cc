// Writes the seed corpus of coordinator_rpc_fuzzer: sessions a real client
// and real agents would have with the coordinator (the example sweeps of
// configs/ submitted, agents registering, leasing, reporting, completing),
// and one plain call of every method. Each session is run through the
// harness first, and any call that does not answer as the session expects
// stops the program: a seed that fails early would leave the fuzzer at the
// protocol's door.
//
//   coordinator_rpc_seeds DIR     writes the seeds into DIR
//   coordinator_rpc_seeds         checks them only
//
// The committed corpus (fuzz/corpus/coordinator_rpc) comes from
// `coordinator_rpc_seeds fuzz/corpus/coordinator_rpc`, plus inputs that once
// crashed the coordinator.

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "common/hash.h"
#include "coordinator/artifacts/artifact_store.h"
#include "fuzz/coordinator_rpc_harness.h"
#include "stylesweep/v1/coordinator.pb.h"

namespace stylesweep::fuzz {
namespace {

using v1::CompleteRunRequest;
using v1::ControlSweepRequest;
using v1::DeleteSweepRequest;
using v1::FetchArtifactRequest;
using v1::FetchBlobRequest;
using v1::GetRunRequest;
using v1::GetSweepRequest;
using v1::HeartbeatRequest;
using v1::LeaseRunRequest;
using v1::ListAgentsRequest;
using v1::RegisterAgentRequest;
using v1::ReleaseAgentRequest;
using v1::ReleaseRunRequest;
using v1::ReportMetricsRequest;
using v1::SubmitSweepRequest;
using v1::UploadSnapshotRequest;

// A 1 x 1 grey PNG: the smallest image the coordinator takes as a snapshot,
// and the content image of every seed sweep.
const std::string& Png() {
  static const std::string png(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01"
      "\x08\x00\x00\x00\x00\x3a\x7e\x9b\x55\x00\x00\x00\x0a\x49\x44\x41\x54\x78\xda\x63\x68\x00\x00"
      "\x00\x82\x00\x81\xda\x45\x08\x3b\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
      67);
  return png;
}
// A JPEG's markers up to its frame header (1 x 1, three components): what
// the coordinator reads of a submitted image (agents decode the rest).
const std::string kJpeg(
    "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xc0\x00\x11"
    "\x08\x00\x01\x00\x01\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9",
    41);

std::string ReadSweep(const std::string& name) {
  std::ifstream in(std::string(STYLESWEEP_SOURCE_DIR) + "/configs/" + name);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    std::fprintf(stderr, "cannot read configs/%s\n", name.c_str());
    std::exit(1);
  }
  return text.str();
}

SubmitSweepRequest Submission(const std::string& config) {
  SubmitSweepRequest request;
  request.set_yaml(ReadSweep(config));
  request.set_source("configs/" + config);
  v1::FileBlob* content = request.add_files();
  content->set_path("images/cat.png");
  content->set_data(Png());
  v1::FileBlob* style = request.add_files();
  style->set_path("images/starry_night.jpg");
  style->set_data(kJpeg);
  return request;
}

RegisterAgentRequest Agent(const std::string& name) {
  RegisterAgentRequest request;
  request.set_name(name);
  request.set_host("host-" + name);
  request.set_device("cpu");
  request.set_device_name("Example CPU");
  request.set_memory_bytes(int64_t{8} << 30);
  request.set_slots(1);
  return request;
}

LeaseRunRequest Lease(const std::string& agent) {
  LeaseRunRequest request;
  request.set_agent(agent);
  return request;
}

HeartbeatRequest Beat(const std::string& agent, int64_t run, int attempt, int step, int steps) {
  HeartbeatRequest request;
  request.set_agent(agent);
  request.set_run_id(run);
  request.set_attempt(attempt);
  request.set_step(step);
  request.set_steps(steps);
  request.set_steps_per_second(4.5);
  return request;
}

// Losses at `steps`, total = `scale` / (step + 1).
ReportMetricsRequest Losses(const std::string& agent, int64_t run, int attempt, const std::vector<int>& steps,
                            double scale) {
  ReportMetricsRequest request;
  request.set_agent(agent);
  request.set_run_id(run);
  request.set_attempt(attempt);
  for (int step : steps) {
    v1::StepLoss* loss = request.add_losses();
    loss->set_step(step);
    loss->set_total(scale / (step + 1));
    loss->set_style(0.6 * loss->total());
    loss->set_content(0.3 * loss->total());
    loss->set_tv(0.1 * loss->total());
    loss->set_step_seconds(0.25);
    // Evaluated, as an agent evaluates the steps it reports at rungs and
    // snapshots; ranked the same way as the losses.
    v1::Evaluation* eval = loss->mutable_eval();
    const double level = loss->total() / 1000;
    eval->set_style(level);
    eval->set_content(level / 2);
    eval->set_tv(0.01);
    eval->set_style_norm(level);
    eval->set_content_norm(level / 2);
    eval->set_tv_norm(0.9);
    eval->set_ssim(1 / (1 + level));
    eval->set_color(level / 4);
  }
  return request;
}

UploadSnapshotRequest Snapshot(const std::string& agent, int64_t run, int attempt, int step, bool final) {
  UploadSnapshotRequest request;
  request.set_agent(agent);
  request.set_run_id(run);
  request.set_attempt(attempt);
  request.set_step(step);
  request.set_final(final);
  request.set_png(Png());
  return request;
}

CompleteRunRequest Complete(const std::string& agent, int64_t run, int attempt, const std::string& state) {
  CompleteRunRequest request;
  request.set_agent(agent);
  request.set_run_id(run);
  request.set_attempt(attempt);
  request.set_state(state);
  return request;
}

ControlSweepRequest Control(const std::string& sweep, ControlSweepRequest::Action action) {
  ControlSweepRequest request;
  request.set_sweep(sweep);
  request.set_action(action);
  return request;
}

GetSweepRequest Sweep(const std::string& sweep) {
  GetSweepRequest request;
  request.set_sweep(sweep);
  return request;
}

GetRunRequest Run(int64_t run) {
  GetRunRequest request;
  request.set_run_id(run);
  request.set_losses(true);
  request.set_snapshots(true);
  return request;
}

// A session: calls with the status each should answer, and optionally what
// its reply must say.
class Session {
 public:
  using Check = std::function<bool(const google::protobuf::Message&)>;

  explicit Session(std::string name) : name_(std::move(name)) {}

  Session& Call(Action action, const google::protobuf::Message& request, grpc::StatusCode expected = grpc::OK,
                Check check = nullptr) {
    input_ += EncodeCall(action, request);
    steps_.push_back({action, expected, std::move(check)});
    return *this;
  }
  Session& AdvanceClock(uint32_t ms) {
    input_ += EncodeAdvanceClock(ms);
    steps_.push_back({Action::kAdvanceClock, grpc::OK, nullptr});
    return *this;
  }

  const std::string& name() const { return name_; }
  const std::string& input() const { return input_; }

  // Empty when every call answered as expected; else what went otherwise.
  std::string Verify(CoordinatorHarness& harness) const {
    if (steps_.size() > static_cast<size_t>(kMaxCalls)) return "more calls than an input runs";
    std::string problem;
    size_t i = 0;
    harness.Run(input_, [&](Action action, const grpc::Status& status, const google::protobuf::Message* reply) {
      const Step& step = steps_[i];
      const std::string where = "call " + std::to_string(i + 1) + " (" + ActionName(action) + ")";
      ++i;
      if (!problem.empty()) return;
      if (status.error_code() != step.expected) {
        problem = where + " answered " + std::to_string(status.error_code()) + " '" + status.error_message() +
                  "', expected " + std::to_string(step.expected);
      } else if (step.check && (reply == nullptr || !step.check(*reply))) {
        problem = where + " answered " + (reply ? reply->ShortDebugString() : "no reply") +
                  ", not what the session expects";
      }
    });
    if (problem.empty() && i != steps_.size()) problem = "only " + std::to_string(i) + " calls ran";
    return problem;
  }

 private:
  struct Step {
    Action action;
    grpc::StatusCode expected;
    Check check;
  };
  std::string name_;
  std::string input_;
  std::vector<Step> steps_;
};

template <typename Reply>
Session::Check Expect(std::function<bool(const Reply&)> check) {
  return [check](const google::protobuf::Message& reply) { return check(static_cast<const Reply&>(reply)); };
}

Session::Check Granted(int64_t run, int attempt) {
  return Expect<v1::LeaseRunResponse>([run, attempt](const v1::LeaseRunResponse& reply) {
    return reply.granted() && reply.run_id() == run && reply.attempt() == attempt;
  });
}
const Session::Check kNotGranted =
    Expect<v1::LeaseRunResponse>([](const v1::LeaseRunResponse& reply) { return !reply.granted(); });

std::vector<Session> Sessions() {
  std::vector<Session> sessions;
  const std::string content_blob = "sha256:" + Sha256Hex(Png());

  // A grid sweep from submission to its report: one run leased, its losses
  // and snapshots reported, completed, read back.
  {
    const std::string sweep_dir = ArtifactStore::SweepDir(1, "layers-vs-weight");
    FetchBlobRequest blob;
    blob.set_blob_id(content_blob);
    FetchArtifactRequest final_image;
    final_image.set_path(ArtifactStore::SnapshotPath(sweep_dir, 0, 1, 300, true));
    GetSweepRequest all;
    all.set_with_spec(true);
    Session& s = sessions.emplace_back("session-grid");
    s.Call(Action::kSubmitSweep, Submission("example-grid.yaml"))
        .Call(Action::kRegisterAgent, Agent("gpu-0"))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(1, 1))
        .Call(Action::kFetchBlob, blob)
        .Call(Action::kHeartbeat, Beat("gpu-0", 1, 1, 10, 300))
        .Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {0, 50, 100, 150}, 1000))
        .Call(Action::kUploadSnapshot, Snapshot("gpu-0", 1, 1, 150, false))
        .Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {200, 250, 300}, 1000))
        .Call(Action::kUploadSnapshot, Snapshot("gpu-0", 1, 1, 300, true))
        .Call(Action::kCompleteRun, Complete("gpu-0", 1, 1, "SUCCEEDED"))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(2, 1))
        .Call(Action::kGetSweep, Sweep("layers-vs-weight"))
        .Call(Action::kGetRun, Run(1))
        .Call(Action::kFetchArtifact, final_image)
        .Call(Action::kListAgents, ListAgentsRequest())
        .Call(Action::kGetSweep, all);
  }

  // A random sweep whose run diverges, is retried, paused, cancelled and
  // deleted; the agent hands a run back on the way.
  {
    ReportMetricsRequest nan = Losses("gpu-0", 1, 1, {0, 100}, 50);
    nan.mutable_losses(1)->set_total(std::numeric_limits<double>::quiet_NaN());
    CompleteRunRequest diverged = Complete("gpu-0", 1, 1, "FAILED");
    diverged.set_diverged(true);
    diverged.set_diverged_step(100);
    diverged.set_error("the loss became NaN at step 100");
    ReleaseRunRequest release;
    release.set_agent("gpu-0");
    release.set_run_id(2);
    release.set_attempt(1);
    release.set_reason("draining");
    DeleteSweepRequest remove;
    remove.set_sweep("random-weights");
    remove.set_cancel_first(true);
    Session& s = sessions.emplace_back("session-random");
    s.Call(Action::kSubmitSweep, Submission("example-random.yaml"))
        .Call(Action::kRegisterAgent, Agent("gpu-0"))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(1, 1))
        .Call(Action::kReportMetrics, nan)
        .Call(Action::kUploadSnapshot, Snapshot("gpu-0", 1, 1, 0, true), grpc::FAILED_PRECONDITION)
        .Call(Action::kCompleteRun, diverged)
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(2, 1))
        .Call(Action::kReleaseRun, release)
        .Call(Action::kControlSweep, Control("random-weights", ControlSweepRequest::PAUSE))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, kNotGranted)
        .Call(Action::kControlSweep, Control("random-weights", ControlSweepRequest::RESUME))
        .Call(Action::kControlSweep, Control("random-weights", ControlSweepRequest::RETRY_FAILED))
        .Call(Action::kGetSweep, Sweep("1"))
        .Call(Action::kControlSweep, Control("random-weights", ControlSweepRequest::CANCEL))
        .Call(Action::kDeleteSweep, remove)
        .Call(Action::kGetSweep, GetSweepRequest());
  }

  // A bayes sweep with hyperband: three agents, one run pruned at the first
  // rung, one that runs out of memory, new proposals from the results.
  {
    CompleteRunRequest oom = Complete("gpu-2", 3, 1, "FAILED");
    oom.set_out_of_memory(true);
    oom.set_error("CUDA out of memory");
    oom.set_log_tail("RuntimeError: CUDA out of memory.\n");
    Session& s = sessions.emplace_back("session-bayes");
    s.Call(Action::kSubmitSweep, Submission("example-bayes.yaml"))
        .Call(Action::kRegisterAgent, Agent("gpu-0"))
        .Call(Action::kRegisterAgent, Agent("gpu-1"))
        .Call(Action::kRegisterAgent, Agent("gpu-2"))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(1, 1))
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(2, 1))
        .Call(Action::kLeaseRun, Lease("gpu-2"), grpc::OK, Granted(3, 1))
        .Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {0, 25}, 100))
        .Call(Action::kReportMetrics, Losses("gpu-1", 2, 1, {0, 25}, 900), grpc::OK,
              Expect<v1::ReportMetricsResponse>([](const v1::ReportMetricsResponse& r) { return r.prune(); }))
        .Call(Action::kUploadSnapshot, Snapshot("gpu-1", 2, 1, 25, false))
        .Call(Action::kCompleteRun, Complete("gpu-1", 2, 1, "PRUNED"))
        .Call(Action::kCompleteRun, oom)
        .Call(Action::kHeartbeat, Beat("gpu-0", 1, 1, 60, 400))
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(3, 2))
        .Call(Action::kLeaseRun, Lease("gpu-2"), grpc::OK, Granted(4, 1))
        .Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {75, 225, 400}, 100))
        .Call(Action::kCompleteRun, Complete("gpu-0", 1, 1, "SUCCEEDED"))
        .Call(Action::kGetSweep, Sweep("bayes-weights"))
        .Call(Action::kGetRun, Run(2));
  }

  // Time passes: a silent agent loses its run to another, which then fails
  // often enough to be quarantined, and is released.
  {
    ReleaseAgentRequest release;
    release.set_name("gpu-1");
    Session& s = sessions.emplace_back("session-leases");
    s.Call(Action::kSubmitSweep, Submission("demo.yaml"))
        .Call(Action::kRegisterAgent, Agent("gpu-0"))
        .Call(Action::kRegisterAgent, Agent("gpu-1"))
        .Call(Action::kLeaseRun, Lease("gpu-0"), grpc::OK, Granted(1, 1))
        .AdvanceClock(31000)
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(1, 2))
        .Call(Action::kHeartbeat, Beat("gpu-0", 1, 1, 20, 150), grpc::OK,
              Expect<v1::HeartbeatResponse>([](const v1::HeartbeatResponse& r) { return r.stop_run(); }))
        .Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {20}, 10), grpc::FAILED_PRECONDITION)
        .Call(Action::kCompleteRun, Complete("gpu-1", 1, 2, "FAILED"))
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(2, 1))
        .Call(Action::kCompleteRun, Complete("gpu-1", 2, 1, "FAILED"))
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(3, 1))
        .Call(Action::kCompleteRun, Complete("gpu-1", 3, 1, "FAILED"))
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, kNotGranted)
        .Call(Action::kListAgents, ListAgentsRequest())
        .Call(Action::kReleaseAgent, release)
        .Call(Action::kLeaseRun, Lease("gpu-1"), grpc::OK, Granted(4, 1))
        .Call(Action::kReleaseRun, [] {
          ReleaseRunRequest r;
          r.set_agent("gpu-1");
          r.set_run_id(4);
          r.set_attempt(1);
          r.set_reason("interrupted");
          return r;
        }());
  }

  // A dry run naming a weights file, and the duplicate it is not.
  {
    SubmitSweepRequest dry = Submission("example-grid.yaml");
    dry.set_yaml(dry.yaml() + "weights: vgg19.pth\n");
    (*dry.mutable_weights_paths())["vgg19.pth"] = "/opt/weights/vgg19.pth";
    dry.set_dry_run(true);
    SubmitSweepRequest again = dry;
    again.set_dry_run(false);
    Session& s = sessions.emplace_back("session-submit");
    s.Call(Action::kSubmitSweep, dry)
        .Call(Action::kSubmitSweep, again)
        .Call(Action::kSubmitSweep, again, grpc::ALREADY_EXISTS)
        .Call(Action::kGetSweep, Sweep("layers-vs-weight"));
  }

  // One plain call of each method on an empty coordinator.
  sessions.emplace_back("call-submit").Call(Action::kSubmitSweep, Submission("demo.yaml"));
  sessions.emplace_back("call-get-sweep").Call(Action::kGetSweep, GetSweepRequest());
  sessions.emplace_back("call-control")
      .Call(Action::kControlSweep, Control("demo", ControlSweepRequest::CANCEL), grpc::NOT_FOUND);
  sessions.emplace_back("call-delete").Call(Action::kDeleteSweep, [] {
    DeleteSweepRequest r;
    r.set_sweep("demo");
    return r;
  }(), grpc::NOT_FOUND);
  sessions.emplace_back("call-register").Call(Action::kRegisterAgent, Agent("gpu-0"));
  sessions.emplace_back("call-lease").Call(Action::kLeaseRun, Lease("gpu-0"), grpc::NOT_FOUND);
  sessions.emplace_back("call-fetch-blob").Call(Action::kFetchBlob, [&] {
    FetchBlobRequest r;
    r.set_blob_id(content_blob);
    return r;
  }(), grpc::NOT_FOUND);
  sessions.emplace_back("call-heartbeat")
      .Call(Action::kHeartbeat, Beat("gpu-0", 0, 0, 0, 0), grpc::PERMISSION_DENIED);
  sessions.emplace_back("call-report").Call(Action::kReportMetrics, Losses("gpu-0", 1, 1, {0}, 1),
                                            grpc::PERMISSION_DENIED);
  sessions.emplace_back("call-upload").Call(Action::kUploadSnapshot, Snapshot("gpu-0", 1, 1, 0, true),
                                            grpc::PERMISSION_DENIED);
  sessions.emplace_back("call-complete").Call(Action::kCompleteRun, Complete("gpu-0", 1, 1, "SUCCEEDED"),
                                              grpc::PERMISSION_DENIED);
  sessions.emplace_back("call-release-run").Call(Action::kReleaseRun, [] {
    ReleaseRunRequest r;
    r.set_agent("gpu-0");
    r.set_run_id(1);
    r.set_attempt(1);
    return r;
  }(), grpc::PERMISSION_DENIED);
  sessions.emplace_back("call-list-agents").Call(Action::kListAgents, ListAgentsRequest());
  sessions.emplace_back("call-release-agent").Call(Action::kReleaseAgent, [] {
    ReleaseAgentRequest r;
    r.set_name("gpu-0");
    return r;
  }(), grpc::NOT_FOUND);
  sessions.emplace_back("call-get-run").Call(Action::kGetRun, Run(1), grpc::NOT_FOUND);
  sessions.emplace_back("call-fetch-artifact").Call(Action::kFetchArtifact, [] {
    FetchArtifactRequest r;
    r.set_path("1-demo/run-0/attempt-1/final.png");
    return r;
  }(), grpc::NOT_FOUND);
  return sessions;
}

}  // namespace
}  // namespace stylesweep::fuzz

int main(int argc, char** argv) {
  using stylesweep::fuzz::CoordinatorHarness;
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [DIR]\n", argv[0]);
    return 2;
  }
  spdlog::set_level(spdlog::level::off);
  std::string dir = (std::filesystem::temp_directory_path() / "coordinator_rpc_seeds.XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  CoordinatorHarness harness(dir);
  int failed = 0;
  for (const auto& session : stylesweep::fuzz::Sessions()) {
    if (std::string problem = session.Verify(harness); !problem.empty()) {
      std::fprintf(stderr, "%s: %s\n", session.name().c_str(), problem.c_str());
      ++failed;
      continue;
    }
    if (argc == 2) {
      std::ofstream out(std::filesystem::path(argv[1]) / session.name(), std::ios::binary);
      out << session.input();
      if (!out) {
        std::fprintf(stderr, "cannot write %s/%s\n", argv[1], session.name().c_str());
        ++failed;
      }
    }
  }
  std::filesystem::remove_all(dir);
  return failed == 0 ? 0 : 1;
}
