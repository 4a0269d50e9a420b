// stylesweep: the user's command line. Submits sweeps, shows their status and
// results, runs one image without a coordinator, or a whole sweep locally.
//
// Built twice. `stylesweep` links no LibTorch, so the commands people run
// often (status, report, compare, agents, watch, submit) start in
// milliseconds instead of the second LibTorch's start-up takes; for what
// needs the engine (local, stylize, checking a weights file) it runs the
// same command again as `stylesweep-engine`, this file built with
// STYLESWEEP_WITH_ENGINE, installed beside it.

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#if STYLESWEEP_WITH_ENGINE
#include "agent/engine/engine.h"
#endif
#include <cerrno>
#include <cstring>
#include <filesystem>
#include "common/files.h"
#include "common/layers.h"
#include "common/text.h"
#include "coordinator/rpc/convert.h"
#include "rpc/transport.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"
#include "tools/commands.h"
#include "common/clock.h"
#include "tools/compare.h"
#include "tools/live_view.h"
#include "tools/report.h"
#include "tools/status.h"
#include "tools/submission.h"
#include "tools/sweep_control.h"
#include "tools/sweep_source.h"
#include "tools/terminal_text.h"
#include "tools/tokens.h"

namespace stylesweep {
namespace {

struct ConnectionFlags {
  std::string coordinator = "127.0.0.1:50051";
  bool tls = false;
  std::string tls_ca;
  std::string token_file;

  void Add(CLI::App* app) {
    app->add_option("--coordinator", coordinator, "coordinator HOST:PORT")->capture_default_str();
    app->add_flag("--tls", tls, "connect with TLS");
    app->add_option("--tls-ca", tls_ca, "PEM root certificates for --tls");
    app->add_option("--token-file", token_file,
                    "file holding your token, a user's (or reader's, to read) from `stylesweep tokens create` (or "
                    "set STYLESWEEP_TOKEN)");
  }

  struct Connected {
    ClientSecurity security;
    std::unique_ptr<v1::Coordinator::Stub> stub;
  };
  // A stub for the coordinator; errors are the user's flags (a token or CA
  // file that cannot be read).
  absl::StatusOr<Connected> Connect() const {
    auto security = Security();
    if (!security.ok()) return security.status();
    auto channel = MakeChannel(coordinator, *security);
    if (!channel.ok()) return channel.status();
    return Connected{*security, v1::Coordinator::NewStub(*channel)};
  }

  absl::StatusOr<ClientSecurity> Security() const {
    ClientSecurity security;
    security.tls = tls || !tls_ca.empty();
    security.tls_ca_file = tls_ca;
    auto token = LoadToken(token_file);
    if (!token.ok()) return token.status();
    security.token = *token;
    return security;
  }
};

// The command line as given, for running it again with the engine and for
// naming what the user asked when a failure says nothing more.
char** command_line = nullptr;

std::string CommandLine() {
  std::string text;
  for (char** arg = command_line; arg != nullptr && *arg != nullptr; ++arg) {
    absl::StrAppend(&text, text.empty() ? "" : " ", arg == command_line ? "stylesweep" : *arg);
  }
  return text;
}

int Fail(const absl::Status& status, int code = 1) {
  std::string message(status.message());
  // Never a bare "error: ": a status without words still says what failed.
  if (message.empty()) {
    message = absl::StrCat(absl::StatusCodeToString(status.code()), " with no further detail, running `",
                           CommandLine(), "`");
  }
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return code;
}

// A failed call to the coordinator: says when it cannot be reached; exit
// status 2 for a request it refused as invalid.
int FailCall(const grpc::Status& status, const ConnectionFlags& connection) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    auto security = connection.Security();
    return Fail(UnreachableError(status, connection.coordinator, security.ok() ? *security : ClientSecurity{}));
  }
  return Fail(FromGrpcStatus(status), status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1);
}

constexpr char kAllowDirHelp[] =
    "a directory images may also come from, besides the sweep file's own (repeat for more); files under /proc, "
    "/dev and /sys never may";

#if STYLESWEEP_WITH_ENGINE
absl::Status CheckWeights(const std::string& path) { return CheckWeightsFile(path); }
#else
// Replaces this process by `stylesweep-engine` (beside this executable) with
// the same arguments; returns only if that fails.
absl::Status RunWithEngine() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string engine = ((ec ? std::filesystem::path() : self.parent_path()) / "stylesweep-engine").string();
  ::execv(engine.c_str(), command_line);
  return absl::FailedPreconditionError(absl::StrCat("this command needs the engine, in ", engine, ", which cannot "
                                                    "be started (", std::strerror(errno),
                                                    "); install it beside stylesweep"));
}

// Checking a weights file needs LibTorch: the whole command runs again with
// the engine, before anything was sent anywhere.
absl::Status CheckWeights(const std::string&) { return RunWithEngine(); }
#endif

int Submit(const ConnectionFlags& connection, const std::string& file, const std::vector<std::string>& allowed_dirs,
           bool dry_run, bool allow_duplicate) {
  auto submission = PrepareSubmission(file, SubmissionOptions{CheckWeights, allowed_dirs});
  if (!submission.ok()) return Fail(submission.status(), 2);
  auto connected = connection.Connect();
  if (!connected.ok()) return Fail(connected.status(), 2);
  const ClientSecurity& security = connected->security;
  v1::Coordinator::Stub& stub = *connected->stub;
  v1::SubmitSweepRequest request;
  request.set_yaml(submission->yaml);
  // The file's name, for the coordinator's messages only: a protocol string
  // must be UTF-8, and a name that is not had to come with `name:`.
  request.set_source(ToValidUtf8(submission->source));
  request.set_dry_run(dry_run);
  request.set_allow_duplicate(allow_duplicate);
  for (const auto& [path, data] : submission->files) {
    v1::FileBlob* blob = request.add_files();
    blob->set_path(path);
    blob->set_data(data);
  }
  request.mutable_weights_paths()->insert(submission->weights.begin(), submission->weights.end());
  grpc::ClientContext context;
  PrepareContext(context, security, 60000);
  v1::SubmitSweepResponse response;
  grpc::Status status = stub.SubmitSweep(&context, request, &response);
  if (!status.ok()) return FailCall(status, connection);
  // The coordinator's warnings (the same SweepSpec::Warnings the file gives
  // here, but also what raw clients get).
  for (const std::string& warning : response.warnings()) {
    std::fprintf(stderr, "warning: %s: %s\n", ForTerminal(file).c_str(), ForTerminal(warning).c_str());
  }

  SweepView view;
  view.sweep = FromProto(response.sweep());
  for (const v1::RunSummary& run : response.runs()) view.runs.push_back(FromProto(run, view.sweep.id));
  // The reply lists at most the first 1,000 runs; runs_total counts them all.
  const long long runs_total = response.runs_total();
  const std::string listed =
      runs_total > response.runs_size() ? absl::StrCat("; the first ", response.runs_size(), " are listed") : "";
  const std::string& method = response.sweep().method();
  if (dry_run) {
    if (method == "bayes") {
      std::printf("dry run: %s is a bayes sweep of up to %d runs (nothing stored); its runs are proposed one by one "
                  "as results arrive, so none can be listed yet\n",
                  file.c_str(), response.sweep().run_cap());
      return 0;
    }
    if (method == "random") {
      std::printf("dry run: %s would create %lld runs, the first run_cap draws of its seeded generator "
                  "(nothing stored%s)\n\n",
                  file.c_str(), runs_total, listed.c_str());
    } else {
      std::printf("dry run: %s would create %lld runs (nothing stored%s)\n\n", file.c_str(), runs_total,
                  listed.c_str());
    }
    std::printf("%s", RenderRunTable(view).c_str());
    return 0;
  }
  if (method == "bayes") {
    std::printf("submitted sweep %lld '%s': bayes, up to %d runs, proposed as agents ask for work\n",
                static_cast<long long>(view.sweep.id), ForTerminal(view.sweep.name).c_str(), response.sweep().run_cap());
  } else {
    std::printf("submitted sweep %lld '%s': %lld runs queued\n", static_cast<long long>(view.sweep.id),
                ForTerminal(view.sweep.name).c_str(), runs_total);
  }
  std::printf("follow it with: stylesweep status %lld --coordinator %s\n", static_cast<long long>(view.sweep.id),
              connection.coordinator.c_str());
  return 0;
}

// cancel | pause | resume | retry --failed, through the coordinator (the
// only writer of the database).
int Control(const ConnectionFlags& connection, const std::string& sweep, v1::ControlSweepRequest::Action action) {
  auto connected = connection.Connect();
  if (!connected.ok()) return Fail(connected.status(), 2);
  const ClientSecurity& security = connected->security;
  v1::Coordinator::Stub& stub = *connected->stub;
  v1::ControlSweepRequest request;
  request.set_sweep(sweep);
  request.set_action(action);
  grpc::ClientContext context;
  PrepareContext(context, security, 30000);
  v1::ControlSweepResponse response;
  grpc::Status status = stub.ControlSweep(&context, request, &response);
  if (!status.ok()) return FailCall(status, connection);
  const v1::SweepSummary& s = response.sweep();
  const std::string shown_name = ForTerminal(s.name());
  const char* name = shown_name.c_str();
  const long long id = static_cast<long long>(s.id());
  switch (action) {
    case v1::ControlSweepRequest::CANCEL:
      std::printf("sweep %lld '%s': %d run%s cancelled\n", id, name, response.runs(), response.runs() == 1 ? "" : "s");
      break;
    case v1::ControlSweepRequest::PAUSE:
      std::printf("sweep %lld '%s' paused: queued runs wait (runs in progress finish); resume with: stylesweep resume "
                  "%lld\n",
                  id, name, id);
      break;
    case v1::ControlSweepRequest::RESUME:
      std::printf("sweep %lld '%s' resumed\n", id, name);
      break;
    default:
      std::printf("sweep %lld '%s': %d failed or lost run%s queued again\n", id, name, response.runs(),
                  response.runs() == 1 ? "" : "s");
      break;
  }
  return 0;
}

// Through the coordinator, like Control: it removes the sweep's files too.
int Delete(const ConnectionFlags& connection, const std::string& sweep, bool cancel_first) {
  auto connected = connection.Connect();
  if (!connected.ok()) return Fail(connected.status(), 2);
  auto deleted = DeleteSweep(*connected->stub, connected->security, sweep, cancel_first);
  if (!deleted.ok()) return FailCall(ToGrpcStatus(deleted.status()), connection);
  std::printf("%s\n", DescribeDeletion(*deleted).c_str());
  return 0;
}

// Reads the database file when one is given, else asks the coordinator.
absl::StatusOr<SourceOptions> MakeSource(const ConnectionFlags& connection, const std::string& db) {
  SourceOptions source;
  source.db = db;
  source.coordinator = connection.coordinator;
  if (db.empty()) {
    auto security = connection.Security();
    if (!security.ok()) return security.status();
    source.security = *security;
  }
  return source;
}

int Show(const ConnectionFlags& connection, const std::string& db, const std::string& sweep) {
  auto options = MakeSource(connection, db);
  if (!options.ok()) return Fail(options.status(), 2);
  auto source = OpenSweepSource(*options);
  if (!source.ok()) return Fail(source.status());
  if (sweep.empty()) {
    auto list = (*source)->ListSweeps();
    if (!list.ok()) return Fail(list.status());
    std::printf("%s", RenderSweepList(*list).c_str());
    return 0;
  }
  auto view = (*source)->GetSweep(sweep);
  if (!view.ok()) return Fail(view.status());
  std::printf("%s\nevery run: stylesweep report %s%s\n", RenderSweepStatus(*view, SystemClock().NowMillis()).c_str(),
              sweep.c_str(), db.empty() ? "" : absl::StrCat(" --db ", db).c_str());
  return 0;
}

// Prints `text`, or writes it to `out` when one is given.
int Emit(const std::string& text, const std::string& out) {
  if (out.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (absl::Status s = WriteFileAtomically(out, text); !s.ok()) return Fail(s);
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

int Report(const ConnectionFlags& connection, const std::string& db, const std::string& sweep,
           const ReportOptions& options, const std::string& out) {
  auto source_options = MakeSource(connection, db);
  if (!source_options.ok()) return Fail(source_options.status(), 2);
  auto source = OpenSweepSource(*source_options);
  if (!source.ok()) return Fail(source.status());
  if (options.format == "html") {
    auto data = LoadHtmlReportData(**source, sweep, options);
    if (!data.ok()) return Fail(data.status(), absl::IsInvalidArgument(data.status()) ? 2 : 1);
    return Emit(RenderHtmlReport(*data), out);
  }
  auto view = (*source)->GetSweep(sweep);
  if (!view.ok()) return Fail(view.status());
  auto text = RenderReport(*view, options);
  if (!text.ok()) return Fail(text.status(), 2);
  return Emit(*text, out);
}

// The coordinator's agents, and its clock (for heartbeat ages).
absl::Status FetchAgents(v1::Coordinator::Stub& stub, const ClientSecurity& security, std::vector<AgentLine>& agents,
                         int64_t& now_ms) {
  grpc::ClientContext context;
  PrepareContext(context, security, 10000);
  v1::ListAgentsResponse response;
  grpc::Status status = stub.ListAgents(&context, v1::ListAgentsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  agents.clear();
  for (const v1::AgentSummary& agent : response.agents()) agents.push_back(AgentLine{FromProto(agent), agent.state()});
  now_ms = response.now_ms();
  return absl::OkStatus();
}

int Agents(const ConnectionFlags& connection, const std::string& release, bool json) {
  auto connected = connection.Connect();
  if (!connected.ok()) return Fail(connected.status(), 2);
  const ClientSecurity& security = connected->security;
  v1::Coordinator::Stub& stub = *connected->stub;
  if (!release.empty()) {
    v1::ReleaseAgentRequest request;
    request.set_name(release);
    grpc::ClientContext context;
    PrepareContext(context, security, 10000);
    v1::ReleaseAgentResponse response;
    grpc::Status status = stub.ReleaseAgent(&context, request, &response);
    if (!status.ok()) return FailCall(status, connection);
    std::printf(response.was_quarantined() ? "agent '%s' released: it takes runs again\n"
                                           : "agent '%s' was not quarantined\n",
                ForTerminal(release).c_str());
    return 0;
  }
  std::vector<AgentLine> agents;
  int64_t now_ms = 0;
  if (absl::Status s = FetchAgents(stub, security, agents, now_ms); !s.ok()) {
    return FailCall(ToGrpcStatus(s), connection);
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const AgentLine& line : agents) {
      const AgentRecord& a = line.agent;
      out.push_back({{"name", a.name},
                     {"host", a.host},
                     {"device", a.device},
                     {"device_name", a.device_name},
                     {"memory_bytes", a.memory_bytes},
                     {"slots", a.slots},
                     {"state", line.state},
                     {"run_id", a.run_id},
                     {"step", a.step},
                     {"steps", a.steps},
                     {"steps_per_second", a.steps_per_second},
                     {"last_heartbeat_seconds_ago", (now_ms - a.last_seen_ms) / 1000.0},
                     {"consecutive_failures", a.consecutive_failures},
                     {"failures", a.failures},
                     {"runs_finished", a.runs_finished},
                     {"quarantine_reason", a.quarantine_reason}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s", RenderAgentsTable(agents, now_ms).c_str());
  return 0;
}

// Refreshes a view of the sweeps (or one), their running runs and the agents
// every `interval_seconds`: in place on a terminal, as plain frames (only when
// something changed) otherwise. With a sweep, returns once it has no queued
// or running run left.
int Watch(const ConnectionFlags& connection, const std::string& sweep, double interval_seconds, bool once) {
  auto connected = connection.Connect();
  if (!connected.ok()) return Fail(connected.status(), 2);
  const ClientSecurity& security = connected->security;
  v1::Coordinator::Stub& stub = *connected->stub;
  auto source_options = MakeSource(connection, "");
  if (!source_options.ok()) return Fail(source_options.status(), 2);
  auto source = OpenSweepSource(*source_options);
  if (!source.ok()) return Fail(source.status());
  const bool terminal = isatty(fileno(stdout)) != 0;
  std::string previous;
  while (true) {
    std::vector<SweepView> views;
    if (sweep.empty()) {
      auto list = (*source)->ListSweeps();
      if (!list.ok()) return Fail(list.status());
      views = *std::move(list);
    } else {
      auto view = (*source)->GetSweep(sweep);
      if (!view.ok()) return Fail(view.status());
      views.push_back(*std::move(view));
    }
    std::vector<AgentLine> agents;
    int64_t now_ms = 0;
    if (absl::Status s = FetchAgents(stub, security, agents, now_ms); !s.ok()) {
      return FailCall(ToGrpcStatus(s), connection);
    }
    std::vector<SweepLine> sweeps;
    bool active = false;
    for (const SweepView& view : views) {
      SweepLine line{view.sweep.id, view.sweep.name, view.counts.empty() ? CountByState(view.runs) : view.counts,
                     view.sweep.paused};
      active = active || line.runs_by_state["QUEUED"] > 0 || line.runs_by_state["RUNNING"] > 0;
      sweeps.push_back(std::move(line));
    }
    if (!sweep.empty()) {
      // Only this sweep's running runs.
      std::set<int64_t> ids;
      for (const RunRecord& run : views.front().runs) ids.insert(run.id);
      for (AgentLine& line : agents) {
        if (ids.count(line.agent.run_id) == 0 && (line.state == "busy" || line.state == "draining")) {
          line.state = "busy elsewhere";
        }
      }
    }
    const std::string frame = RenderWatchFrame(sweeps, agents, now_ms);
    if (terminal) {
      std::printf("\x1b[H\x1b[2J%s  (every %gs; Ctrl-C to stop)\n\n%s", connection.coordinator.c_str(),
                  interval_seconds, frame.c_str());
    } else if (frame != previous) {
      std::printf("---\n%s", frame.c_str());
    }
    std::fflush(stdout);
    previous = frame;
    if (once) return 0;
    if (!sweep.empty() && !active) {
      std::printf("sweep %s: no run queued or running\n", sweep.c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(interval_seconds * 1000)));
  }
}

int Compare(const ConnectionFlags& connection, const std::string& db, const std::string& first,
            const std::string& second, const CompareOptions& options, const std::string& out) {
  if (options.format != "table" && options.format != "json" && options.format != "markdown" &&
      options.format != "html") {
    return Fail(absl::InvalidArgumentError(
                    absl::StrCat("--format: unknown format '", options.format, "'; use table, json, markdown or html")),
                2);
  }
  auto source_options = MakeSource(connection, db);
  if (!source_options.ok()) return Fail(source_options.status(), 2);
  auto source = OpenSweepSource(*source_options);
  if (!source.ok()) return Fail(source.status());
  auto comparison = LoadComparison(**source, first, second);
  if (!comparison.ok()) return Fail(comparison.status(), absl::IsInvalidArgument(comparison.status()) ? 2 : 1);
  auto text = RenderComparison(*comparison, options);
  if (!text.ok()) return Fail(text.status(), 2);
  return Emit(*text, out);
}

void AddRunParamFlags(CLI::App* app, RunParams& p) {
  app->add_option("--style-layers", p.style_layers, "style layers (block1_conv1 or conv1_1 or relu1_1 ...)")
      ->delimiter(',');
  app->add_option("--content-layers", p.content_layers, "content layers")->delimiter(',');
  app->add_option("--style-weight", p.style_weight, "style loss weight")->capture_default_str();
  app->add_option("--content-weight", p.content_weight, "content loss weight")->capture_default_str();
  app->add_option("--tv-weight", p.tv_weight, "total variation weight")->capture_default_str();
  app->add_option("--learning-rate,--lr", p.learning_rate, "Adam learning rate")->capture_default_str();
  app->add_option("--steps", p.steps, "optimisation steps")->capture_default_str();
  app->add_option("--size,--image-size", p.image_size, "long side of the output in pixels")->capture_default_str();
  app->add_option("--snapshot-every", p.snapshot_every, "also save the image every N steps (0: only the final)")
      ->capture_default_str();
  app->add_option("--seed", p.seed, "random seed")->capture_default_str();
  app->add_option("--preprocess", p.preprocess, "torchvision (RGB, ImageNet mean/std) or caffe (BGR, 0-255)")
      ->capture_default_str();
  app->add_option("--optimizer", p.optimizer, "adam or lbfgs (one L-BFGS iteration per step)")->capture_default_str();
  app->add_option("--adam-epsilon-mode", p.adam_epsilon_mode,
                  "tf (epsilon before bias correction, the tutorial's) or torch (after)")
      ->capture_default_str();
  app->add_option("--init", p.init, "initial image: content, style (the first style image) or noise (from --seed)")
      ->capture_default_str();
  app->add_flag("--preserve-colors", p.preserve_colors, "keep the content's colours: transfer luminance only");
  app->add_option("--style-scale", p.style_scale, "style images' long side relative to the output's")
      ->capture_default_str();
  app->add_option("--pooling", p.pooling, "max or avg")->capture_default_str();
  app->add_option("--style-layer-weights", p.style_layer_weights, "one weight per style layer, comma-separated")
      ->delimiter(',');
  app->add_option("--precision", p.precision, "fp32 or bf16 (bfloat16 convolutions)")->capture_default_str();
  app->add_option("--multires-sizes", p.multires_sizes,
                  "coarse-to-fine long sides, comma-separated; the last is the output's (overrides --size)")
      ->delimiter(',');
  app->add_option("--multires-steps", p.multires_steps, "steps at each of --multires-sizes (their sum overrides --steps)")
      ->delimiter(',');
}

}  // namespace
}  // namespace stylesweep

int main(int argc, char** argv) {
  using namespace stylesweep;
  command_line = argv;
  // Every failure is reported below in the user's terms; gRPC's own log
  // lines (a failed TLS handshake) would come first and say less. Setting
  // GRPC_VERBOSITY brings them back.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  CLI::App app{"stylesweep: sweeps of neural style transfer runs over a coordinator and its agents.\n\n"
               "Examples:\n"
               "  stylesweep local configs/demo.yaml --db demo.db --artifacts demo-artifacts --agents 2\n"
               "  stylesweep submit configs/example-grid.yaml --coordinator 127.0.0.1:50051\n"
               "  stylesweep status\n"
               "  stylesweep agents\n"
               "  stylesweep watch my-sweep\n"
               "  stylesweep report layers-vs-weight --db stylesweep.db\n"
               "  stylesweep compare layers-vs-weight#0 layers-vs-weight#3 --db stylesweep.db\n"
               "  stylesweep delete layers-vs-weight --cancel\n"
               "  stylesweep stylize --content cat.png --style starry.jpg --out cat-starry.png --size 256"};
  app.require_subcommand(1);
  ConnectionFlags connection;

  auto* submit = app.add_subcommand("submit", "Send a sweep file to the coordinator, which queues its runs.\n"
                                              "Example: stylesweep submit configs/example-grid.yaml");
  std::string sweep_file;
  bool dry_run = false;
  submit->add_option("SWEEP.yaml", sweep_file, "the sweep file")->required();
  submit->add_flag("--dry-run", dry_run, "validate and list the runs it would create; store nothing");
  bool allow_duplicate = false;
  submit->add_flag("--allow-duplicate", allow_duplicate,
                   "store the sweep even if the same YAML with the same images was submitted before");
  std::vector<std::string> allowed_dirs;
  submit->add_option("--allow-dir", allowed_dirs, kAllowDirHelp)->allow_extra_args(false)->type_name("DIR");
  connection.Add(submit);

  auto* status = app.add_subcommand("status", "Show every sweep with its run counts, or how far one sweep has got: runs "
                                              "by state, steps done of those planned, an ETA from the recent step "
                                              "rate, the best run so far (by eval/score; by loss/total for runs "
                                              "without an evaluation) and the runs on the Pareto front of eval/style "
                                              "and eval/content.\n"
                                              "Example: stylesweep status my-sweep --db stylesweep.db");
  std::string sweep, db;
  status->add_option("SWEEP", sweep, "a sweep's id or name (default: list every sweep)");
  status->add_option("--db", db, "read this SQLite file instead of asking the coordinator");
  connection.Add(status);

  std::string control_sweep;
  bool retry_failed = false;
  auto add_control = [&](const char* name, const char* help) {
    auto* command = app.add_subcommand(name, help);
    command->add_option("SWEEP", control_sweep, "the sweep's id or name")->required();
    connection.Add(command);
    return command;
  };
  auto* cancel = add_control("cancel", "End every queued and running run of a sweep as CANCELLED (running ones stop "
                                       "at their next report; what they ran is kept).\n"
                                       "Example: stylesweep cancel my-sweep");
  auto* pause = add_control("pause", "Lease no more of a sweep's queued runs until it is resumed; runs in progress "
                                     "finish.\nExample: stylesweep pause my-sweep");
  auto* resume = add_control("resume", "Lease a paused sweep's queued runs again.\nExample: stylesweep resume my-sweep");
  auto* retry = add_control("retry", "Queue a sweep's FAILED and LOST runs again (each gets one more attempt).\n"
                                     "Example: stylesweep retry my-sweep --failed");
  retry->add_flag("--failed", retry_failed, "queue the FAILED and LOST runs again")->required();
  bool delete_cancel = false;
  auto* delete_command = add_control("delete", "Remove a sweep for good: its runs, losses, snapshots, artifacts directory and "
                                       "the images no other sweep uses. Refused while runs are queued or running, "
                                       "unless --cancel.\n"
                                       "Example: stylesweep delete my-sweep --cancel");
  delete_command->add_flag("--cancel", delete_cancel, "cancel the sweep's queued and running runs first");

  ReportOptions report_options;
  std::string report_out;
  auto* report = app.add_subcommand(
      "report",
      "Print one row per run of a sweep: parameters, state, evaluation metrics (eval/*, comparable across the "
      "sweep's runs), final losses (weighted by each run's own weights), image. Filter, sort, group, export.\n"
      "Examples:\n"
      "  stylesweep report my-sweep --db stylesweep.db\n"
      "  stylesweep report my-sweep --sort eval/score --top 5 --where \"state = SUCCEEDED and style_weight >= 0.1\"\n"
      "  stylesweep report my-sweep --pareto --sort eval/content\n"
      "  stylesweep report my-sweep --group-by style_layers --metric eval/ssim\n"
      "  stylesweep report my-sweep --format csv -o runs.csv");
  report->add_option("SWEEP", sweep, "a sweep's id or name")->required();
  report->add_option("--db", db, "read this SQLite file (read-only) instead of asking the coordinator");
  report->add_option("--format", report_options.format,
                     "table, csv, json, markdown, or html (one self-contained page with the images)")
      ->capture_default_str();
  report->add_option("--sort", report_options.sort,
                     "order by a field: eval/score, eval/style, eval/content, eval/tv, eval/style_norm, "
                     "eval/content_norm, eval/tv_norm, eval/ssim (higher is better), eval/color, loss/total, "
                     "loss/style, loss/content, loss/tv, duration, step, state, or any parameter; prefix '-' for "
                     "descending. By a metric, diverged runs come last either way, and runs without a value after "
                     "them");
  report->add_option("--top", report_options.top, "keep the first N runs (after --where and --sort)");
  report->add_option("--where", report_options.where,
                     "keep runs matching e.g. \"style_weight >= 0.1 and state = SUCCEEDED\" (= != < <= > >=, and, or, "
                     "not, parentheses); \"diverged = true\" keeps the runs whose loss became NaN or infinite");
  report->add_option("--group-by", report_options.group_by,
                     "one row per value of a parameter: runs, best, mean and spread of --metric");
  report->add_option("--metric", report_options.metric,
                     "what --group-by summarises, any field --sort takes; best is the lowest (the highest for "
                     "eval/ssim). Default: eval/score when the sweep's runs have evaluations, else loss/total");
  report->add_flag("--pareto", report_options.pareto,
                   "keep only the runs on the Pareto front of eval/style and eval/content (no other run is lower on "
                   "both), among the runs with an evaluation that did not diverge; after --where, before --sort and "
                   "--top");
  report->add_option("-o,--output", report_out, "write the report to this file instead of printing it");
  connection.Add(report);

  CompareOptions compare_options;
  std::string compare_first, compare_second, compare_out;
  auto* compare = app.add_subcommand(
      "compare",
      "Two runs side by side: the parameters that differ, state, steps, duration, evaluation metrics with the better "
      "run for each, final losses with their ratio, and both final images.\n"
      "A run is its id (as in report --format json) or SWEEP#INDEX.\n"
      "Examples:\n"
      "  stylesweep compare my-sweep#0 my-sweep#3 --db stylesweep.db\n"
      "  stylesweep compare 12 15 --format html -o compare.html");
  compare->add_option("RUN", compare_first, "the first run: an id or SWEEP#INDEX")->required();
  compare->add_option("RUN2", compare_second, "the second run: an id or SWEEP#INDEX")->required();
  compare->add_option("--db", db, "read this SQLite file (read-only) instead of asking the coordinator");
  compare->add_option("--format", compare_options.format,
                      "table, json, markdown, or html (both images side by side in one self-contained page)")
      ->capture_default_str();
  compare->add_flag("--all", compare_options.all, "show every parameter, not only those that differ");
  compare->add_option("-o,--output", compare_out, "write to this file instead of printing");
  connection.Add(compare);

  std::string release_agent;
  bool agents_json = false;
  auto* agents = app.add_subcommand("agents", "Show every agent: device, state (idle, busy, draining, lost, "
                                              "quarantined), its run and progress, steps/s, last heartbeat, failures.\n"
                                              "Examples:\n"
                                              "  stylesweep agents\n"
                                              "  stylesweep agents --release gpu-box-cuda:0");
  agents->add_option("--release", release_agent, "let a quarantined agent take runs again");
  agents->add_flag("--json", agents_json, "print JSON (one object per agent) instead of a table");
  connection.Add(agents);

  double watch_interval = 2;
  bool watch_once = false;
  auto* watch = app.add_subcommand("watch", "Follow sweeps live: runs by state, a progress bar per running run, the "
                                            "agents. Refreshes in place on a terminal; plain frames otherwise.\n"
                                            "Example: stylesweep watch my-sweep");
  watch->add_option("SWEEP", sweep, "follow only this sweep (and stop when it is done)");
  watch->add_option("--interval", watch_interval, "seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  watch->add_flag("--once", watch_once, "print one frame and exit");
  connection.Add(watch);

  LocalOptions local_options;
  auto* local = app.add_subcommand("local", "Run a whole sweep on this machine: a coordinator and N agents in this "
                                            "process, then print the report.\n"
                                            "Example: stylesweep local configs/demo.yaml --agents 2");
  local->add_option("SWEEP.yaml", local_options.sweep_file, "the sweep file")->required();
  local->add_option("--db", local_options.db, "SQLite file for sweeps and results")->capture_default_str();
  local->add_option("--artifacts", local_options.artifacts, "directory for images and snapshots")
      ->capture_default_str();
  local->add_option("--agents", local_options.agents, "agents to run side by side")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  local->add_option("--threads", local_options.threads, "CPU threads shared by the agents (default: all cores)");
  local->add_option("--weights", local_options.weights, "VGG19 weights file (default: seeded random network)");
  local->add_option("--device", local_options.device, "cpu or cuda:N")->capture_default_str();
  local->add_option("--allow-dir", local_options.allowed_dirs, kAllowDirHelp)->allow_extra_args(false)->type_name("DIR");
  local->add_flag("--allow-duplicate", local_options.allow_duplicate,
                  "run the sweep again even if this database already has it (same YAML, same images)");

  TokenRequest token_request;
  bool tokens_json = false;
  std::string revoke_name;
  auto* tokens = app.add_subcommand(
      "tokens",
      "Manage scoped tokens on the coordinator's database (run it where that file is). Roles: agent (run work, as "
      "the agents named), user (submit, control, read), reader (read only).\n"
      "Examples:\n"
      "  stylesweep tokens create gpu-host-1 --role agent --agents 'gpu-host-1-*' --db sweeps.db --out agent.token\n"
      "  stylesweep tokens create alice --role user --db sweeps.db\n"
      "  stylesweep tokens list --db sweeps.db\n"
      "  stylesweep tokens revoke gpu-host-1 --db sweeps.db");
  tokens->require_subcommand(1);
  auto* tokens_create = tokens->add_subcommand("create", "Make a token; it is printed (or written) once, never stored");
  tokens_create->add_option("NAME", token_request.name, "a unique name for it (who or what holds it)")->required();
  tokens_create->add_option("--role", token_request.role, "agent, user or reader")->required();
  tokens_create->add_option("--agents", token_request.agent_names,
                            "agent role: the agent names it may register, comma-separated; PREFIX* for every name "
                            "starting with PREFIX");
  tokens_create->add_option("--out", token_request.out, "write the token to this file (mode 0600) instead of printing it");
  tokens_create->add_option("--db", token_request.db, "the coordinator's SQLite file")->required();
  auto* tokens_list = tokens->add_subcommand("list", "Show every token: role, agents, created, last used, revoked");
  tokens_list->add_option("--db", token_request.db, "the coordinator's SQLite file")->required();
  tokens_list->add_flag("--json", tokens_json, "print JSON lines");
  auto* tokens_revoke = tokens->add_subcommand("revoke", "Revoke a token; the coordinator refuses it from its next call");
  tokens_revoke->add_option("NAME", revoke_name, "its name (or id)")->required();
  tokens_revoke->add_option("--db", token_request.db, "the coordinator's SQLite file")->required();

  StylizeOptions stylize_options;
  auto* stylize = app.add_subcommand("stylize", "Style one image, no coordinator.\n"
                                                "Example: stylesweep stylize --content cat.png --style starry.jpg "
                                                "--out out.png --size 256 --steps 300");
  stylize->add_option("--content", stylize_options.params.content, "content image (PNG or JPEG)")->required();
  stylize->add_option("--style", stylize_options.params.style, "style image(s) (PNG or JPEG), comma-separated")
      ->required()
      ->delimiter(',');
  stylize->add_option("--style-blend-weights", stylize_options.params.style_blend_weights,
                      "how much each style image counts (default: equally)")
      ->delimiter(',');
  stylize->add_option("--out", stylize_options.out, "output PNG")->required();
  stylize->add_option("--metrics-out", stylize_options.metrics_out, "write one JSON line of losses per step here");
  stylize->add_option("--weights", stylize_options.weights, "VGG19 weights file (default: seeded random network)");
  stylize->add_option("--device", stylize_options.device, "cpu or cuda:N")->capture_default_str();
  stylize->add_option("--threads", stylize_options.threads, "CPU threads (default: all cores)");
  AddRunParamFlags(stylize, stylize_options.params);

  CLI11_PARSE(app, argc, argv);

  // Libraries report some failures by throwing (JSON, YAML, the standard
  // library). What escapes a command is reported with the command it
  // stopped, never as a bare "terminate called".
  try {
    // Names go to the coordinator in protocol strings, which hold only UTF-8
    // (as do the names of sweeps and agents): say so rather than fail to send.
    for (const auto& [what, value] : {std::pair<const char*, const std::string*>{"SWEEP", &sweep},
                                      {"SWEEP", &control_sweep},
                                      {"RUN", &compare_first},
                                      {"RUN2", &compare_second},
                                      {"--release", &release_agent},
                                      {"NAME", &token_request.name},
                                      {"NAME", &revoke_name}}) {
      if (FirstInvalidUtf8(*value) != std::string::npos) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
                        what, " '", *value,
                        "' is not UTF-8 text, which the names of sweeps, runs, agents and tokens always are")),
                    2);
      }
    }
    if (submit->parsed()) return Submit(connection, sweep_file, allowed_dirs, dry_run, allow_duplicate);
    if (status->parsed()) return Show(connection, db, sweep);
    if (cancel->parsed()) return Control(connection, control_sweep, v1::ControlSweepRequest::CANCEL);
    if (pause->parsed()) return Control(connection, control_sweep, v1::ControlSweepRequest::PAUSE);
    if (resume->parsed()) return Control(connection, control_sweep, v1::ControlSweepRequest::RESUME);
    if (retry->parsed()) return Control(connection, control_sweep, v1::ControlSweepRequest::RETRY_FAILED);
    if (delete_command->parsed()) return Delete(connection, control_sweep, delete_cancel);
    if (report->parsed()) return Report(connection, db, sweep, report_options, report_out);
    if (compare->parsed()) {
      return Compare(connection, db, compare_first, compare_second, compare_options, compare_out);
    }
    if (agents->parsed()) return Agents(connection, release_agent, agents_json);
    if (watch->parsed()) return Watch(connection, sweep, watch_interval, watch_once);
    if (tokens_create->parsed()) {
      absl::StatusOr<std::string> token = CreateToken(token_request, SystemClock());
      if (!token.ok()) return Fail(token.status(), absl::IsInvalidArgument(token.status()) ? 2 : 1);
      if (token_request.out.empty()) {
        std::printf("%s\n", token->c_str());
        std::fprintf(stderr, "token '%s' (%s) created; it is shown this once\n",
                     ForTerminal(token_request.name).c_str(), token_request.role.c_str());
      } else {
        std::fprintf(stderr, "token '%s' (%s) written to %s (mode 0600)\n", ForTerminal(token_request.name).c_str(),
                     token_request.role.c_str(), ForTerminal(token_request.out).c_str());
      }
      return 0;
    }
    if (tokens_list->parsed() || tokens_revoke->parsed()) {
      absl::StatusOr<std::string> out = tokens_list->parsed()
                                            ? ListTokens(token_request.db, tokens_json)
                                            : RevokeToken(token_request.db, revoke_name, SystemClock());
      if (!out.ok()) return Fail(out.status());
      std::fputs(out->c_str(), stdout);
      return 0;
    }
#if STYLESWEEP_WITH_ENGINE
    if (local->parsed()) return RunLocal(local_options);
    if (stylize->parsed()) return RunStylize(stylize_options);
#else
    if (local->parsed() || stylize->parsed()) return Fail(RunWithEngine(), 2);
#endif
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return Fail(absl::InternalError(absl::StrCat("`", CommandLine(), "` stopped on an unexpected error: ",
                                                 what.empty() ? "(it gave no detail)" : what,
                                                 ". Please report it with the command and its input")));
  }
  return 1;
}
