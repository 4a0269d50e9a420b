#include "coordinator/rpc/convert.h"


namespace stylesweep {

void ToProto(const RunRecord& run, v1::RunSummary* out) {
  out->set_id(run.id);
  out->set_index(run.index);
  out->set_params_json(run.params_json);
  out->set_state(std::string(RunStateName(run.state)));
  out->set_attempt(run.attempt);
  out->set_agent(run.agent);
  out->set_created_ms(run.created_ms);
  out->set_started_ms(run.started_ms);
  out->set_finished_ms(run.finished_ms);
  out->set_error(run.error);
  out->set_last_step(run.last_step);
  out->set_content_loss(run.content_loss);
  out->set_style_loss(run.style_loss);
  out->set_tv_loss(run.tv_loss);
  out->set_total_loss(run.total_loss);
  out->set_final_snapshot(run.final_snapshot);
  out->set_log_tail(run.log_tail);
  out->set_diverged(run.diverged());
  out->set_diverged_step(run.diverged() ? run.diverged_step : 0);
  out->set_eval_step(run.eval_step);
  if (run.has_eval()) ToProto(run.eval, out->mutable_eval());
}

void ToProto(const AgentView& view, v1::AgentSummary* out) {
  const AgentRecord& agent = view.agent;
  out->set_name(agent.name);
  out->set_host(agent.host);
  out->set_device(agent.device);
  out->set_device_name(agent.device_name);
  out->set_memory_bytes(agent.memory_bytes);
  out->set_slots(agent.slots);
  out->set_description(agent.description);
  out->set_state(std::string(AgentStateName(view.state)));
  out->set_run_id(agent.run_id);
  out->set_attempt(agent.attempt);
  out->set_step(agent.step);
  out->set_steps(agent.steps);
  out->set_steps_per_second(agent.steps_per_second);
  out->set_registered_ms(agent.registered_ms);
  out->set_last_seen_ms(agent.last_seen_ms);
  out->set_consecutive_failures(agent.consecutive_failures);
  out->set_failures(agent.failures);
  out->set_runs_finished(agent.runs_finished);
  out->set_quarantine_reason(agent.quarantine_reason);
}

AgentRecord FromProto(const v1::AgentSummary& agent) {
  AgentRecord a;
  a.name = agent.name();
  a.host = agent.host();
  a.device = agent.device();
  a.device_name = agent.device_name();
  a.memory_bytes = agent.memory_bytes();
  a.slots = agent.slots();
  a.description = agent.description();
  a.registered_ms = agent.registered_ms();
  a.last_seen_ms = agent.last_seen_ms();
  a.run_id = agent.run_id();
  a.attempt = agent.attempt();
  a.step = agent.step();
  a.steps = agent.steps();
  a.steps_per_second = agent.steps_per_second();
  a.draining = agent.state() == "draining";
  a.consecutive_failures = agent.consecutive_failures();
  a.failures = agent.failures();
  a.runs_finished = agent.runs_finished();
  a.quarantine_reason = agent.quarantine_reason();
  return a;
}

void ToProto(const SweepRecord& sweep, const SweepTotals& totals, v1::SweepSummary* out) {
  out->set_id(sweep.id);
  out->set_name(sweep.name);
  out->set_method(sweep.method);
  out->set_source(sweep.source);
  out->set_created_ms(sweep.created_ms);
  out->set_spec_json(sweep.spec_json);
  out->set_steps_run(totals.steps_run);
  out->set_steps_saved(totals.steps_saved);
  out->set_run_cap(sweep.run_cap);
  out->set_paused(sweep.paused);
  out->set_draws(sweep.draws);
  auto& counts = *out->mutable_runs_by_state();
  for (const auto& [state, runs] : totals.runs_by_state) counts[std::string(RunStateName(state))] = static_cast<int32_t>(runs);
}

std::vector<MetricRow> FromProto(const google::protobuf::RepeatedPtrField<v1::StepLoss>& losses) {
  std::vector<MetricRow> rows;
  rows.reserve(losses.size());
  for (const v1::StepLoss& loss : losses) {
    MetricRow& row = rows.emplace_back();
    row.step = loss.step();
    row.content = loss.content();
    row.style = loss.style();
    row.tv = loss.tv();
    row.total = loss.total();
    row.step_seconds = loss.step_seconds();
    if (loss.has_eval()) row.eval = FromProto(loss.eval());
  }
  return rows;
}

void ToProto(const MetricRow& row, v1::StepLoss* out) {
  out->set_step(row.step);
  out->set_content(row.content);
  out->set_style(row.style);
  out->set_tv(row.tv);
  out->set_total(row.total);
  out->set_step_seconds(row.step_seconds);
  if (row.eval) ToProto(*row.eval, out->mutable_eval());
}

void ToProto(const SnapshotRecord& snapshot, v1::SnapshotSummary* out) {
  out->set_attempt(snapshot.attempt);
  out->set_step(snapshot.step);
  out->set_path(snapshot.path);
  out->set_final(snapshot.final);
}

RunRecord FromProto(const v1::RunSummary& run, int64_t sweep_id) {
  RunRecord r;
  r.id = run.id();
  r.sweep_id = sweep_id;
  r.index = run.index();
  r.params_json = run.params_json();
  r.state = ParseRunState(run.state()).value_or(RunState::kQueued);
  r.attempt = run.attempt();
  r.agent = run.agent();
  r.created_ms = run.created_ms();
  r.started_ms = run.started_ms();
  r.finished_ms = run.finished_ms();
  r.error = run.error();
  r.last_step = run.last_step();
  r.content_loss = run.content_loss();
  r.style_loss = run.style_loss();
  r.tv_loss = run.tv_loss();
  r.total_loss = run.total_loss();
  r.final_snapshot = run.final_snapshot();
  r.log_tail = run.log_tail();
  r.diverged_step = run.diverged() ? run.diverged_step() : -1;
  if (run.has_eval() && run.eval_step() >= 0) {
    r.eval_step = run.eval_step();
    r.eval = FromProto(run.eval());
  }
  return r;
}

SweepRecord FromProto(const v1::SweepSummary& sweep) {
  SweepRecord s;
  s.id = sweep.id();
  s.name = sweep.name();
  s.method = sweep.method();
  s.source = sweep.source();
  s.created_ms = sweep.created_ms();
  s.spec_json = sweep.spec_json();
  s.run_cap = sweep.run_cap();
  s.paused = sweep.paused();
  s.draws = sweep.draws();
  return s;
}

SnapshotRecord FromProto(const v1::SnapshotSummary& snapshot, int64_t run_id) {
  return SnapshotRecord{run_id, snapshot.attempt(), snapshot.step(), snapshot.path(), snapshot.final(), ""};
}

}  // namespace stylesweep
