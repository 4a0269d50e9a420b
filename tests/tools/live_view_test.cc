#include "tools/live_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'700'000'000'000;

AgentLine Busy() {
  AgentLine line;
  line.state = "busy";
  AgentRecord& a = line.agent;
  a.name = "gpu1-cuda:0";
  a.host = "gpu1";
  a.device = "cuda:0";
  a.device_name = "NVIDIA H200";
  a.memory_bytes = 150'000'000'000;
  a.last_seen_ms = kNow - 800;
  a.run_id = 17;
  a.step = 412;
  a.steps = 500;
  a.steps_per_second = 41.3;
  a.runs_finished = 12;
  return line;
}

AgentLine Quarantined() {
  AgentLine line;
  line.state = "quarantined";
  AgentRecord& a = line.agent;
  a.name = "gpu1-cuda:1";
  a.host = "gpu1";
  a.device = "cuda:1";
  a.last_seen_ms = kNow - 302'000;
  a.consecutive_failures = 3;
  a.failures = 3;
  a.runs_finished = 9;
  a.quarantine_reason = "3 runs in a row failed; the last: CUDA error";
  return line;
}

TEST(LiveViewTest, AgentsTableShowsDeviceStateProgressHeartbeatAndFailures) {
  const std::string text = RenderAgentsTable({Busy(), Quarantined()}, kNow);
  EXPECT_THAT(text, HasSubstr("NAME         HOST  DEVICE"));
  EXPECT_THAT(text, HasSubstr("cuda:0 NVIDIA H200 (140 GiB)  busy"));
  EXPECT_THAT(text, HasSubstr("17   412/500  41.30    0.8s ago   0 in a row, 0 of 12"));
  // Nothing runs on a quarantined agent: no run, step or rate.
  EXPECT_THAT(text, HasSubstr("quarantined  -    -        -        5m02s ago  3 in a row, 3 of 9"));
  EXPECT_THAT(text, HasSubstr("2 agents: 1 busy, 1 quarantined"));
  EXPECT_THAT(text, HasSubstr("gpu1-cuda:1 is quarantined: 3 runs in a row failed; the last: CUDA error\n"
                              "  let it take runs again with: stylesweep agents --release gpu1-cuda:1\n"));
  EXPECT_EQ(RenderAgentsTable({}, kNow), "no agents have registered\n");
}

TEST(LiveViewTest, WatchFrameHasASweepLineABarPerRunningRunAndTheAgents) {
  SweepLine sweep{3, "layers", {{"SUCCEEDED", 6}, {"RUNNING", 1}, {"QUEUED", 3}}, false};
  AgentLine lost = Quarantined();
  lost.state = "lost";
  lost.agent.name = "laptop";
  const std::string text = RenderWatchFrame({sweep}, {Busy(), lost}, kNow);
  EXPECT_THAT(text, HasSubstr("sweep 3 layers  [############--------] 6/10 done  3 QUEUED, 1 RUNNING, 6 SUCCEEDED\n"));
  // 88 steps left at 41.3 steps/s: about 2.1 s.
  EXPECT_THAT(text, HasSubstr("run 17  [#########################-----]  412/500  41.30 steps/s  2.1s left  on gpu1-cuda:0"));
  EXPECT_THAT(text, HasSubstr("agents: 1 busy, 1 lost (laptop)\n"));
  EXPECT_THAT(RenderWatchFrame({SweepLine{4, "paused-one", {{"QUEUED", 2}}, true}}, {}, kNow),
              AllOf(HasSubstr("sweep 4 paused-one (paused)"), HasSubstr("agents: none"), Not(HasSubstr("running:"))));
}

TEST(LiveViewTest, ProgressBarsAndBytes) {
  EXPECT_EQ(ProgressBar(0, 10, 10), "[----------]");
  EXPECT_EQ(ProgressBar(5, 10, 10), "[#####-----]");
  EXPECT_EQ(ProgressBar(12, 10, 4), "[####]");
  EXPECT_EQ(ProgressBar(3, 0, 4), "[----]");
  EXPECT_EQ(FormatBytes(0), "?");
  EXPECT_EQ(FormatBytes(512LL << 20), "512 MiB");
  EXPECT_EQ(FormatBytes(3LL << 30), "3.0 GiB");
  EXPECT_EQ(FormatBytes(24LL << 30), "24 GiB");
}

}  // namespace
}  // namespace stylesweep
