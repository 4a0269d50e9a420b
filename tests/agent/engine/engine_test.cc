#include "agent/engine/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agent/engine/cpu_memory.h"
#include "agent/engine/image_io.h"
#include "agent/engine/losses.h"
#include "agent/engine/style_transfer.h"
#include "agent/engine/weights.h"
#include "tests/agent/engine/pictures.h"
#include "tests/agent/engine/weights_fixtures.h"
#include "tests/testing/crafted_images.h"

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace engine_testing;

struct Recorded {
  std::vector<StepMetrics> rows;
  std::map<int, std::string> snapshots;
  EngineCallbacks callbacks;
};

// Callbacks that record everything; `recorded` must outlive the run.
void Record(Recorded& recorded) {
  recorded.callbacks.on_step = [&recorded](const StepMetrics& m) { recorded.rows.push_back(m); };
  recorded.callbacks.on_snapshot = [&recorded](int step, const std::string& png) {
    EXPECT_EQ(recorded.snapshots.count(step), 0u) << "snapshot " << step << " taken twice";
    recorded.snapshots[step] = png;
    return absl::OkStatus();
  };
}

class EngineTest : public ::testing::Test {
 protected:
  // ctest runs each test in its own process, so the costly fixtures (a
  // 66 MB weights file, half a second for a random network) are made on
  // first use rather than for the whole suite.
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("engine_test"));
    WritePicture(*dir_ + "/content.png", 32, 24, 1);
    WritePicture(*dir_ + "/style.png", 24, 32, 2);
  }

  static void TearDownTestSuite() {
    delete random_engine_;
    random_engine_ = nullptr;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  // Random convolutions up to block5_conv2, the deepest default layer, as
  // RandomConvs(14, 42) gives them.
  static std::string WeightsFile() {
    const std::string path = Path("vgg19_to_block5_conv2.pth");
    if (!std::filesystem::exists(path)) WriteDictPickle(path, RandomConvs(14, 42));
    return path;
  }

  // An engine with the random network, shared by the tests of one process.
  static Engine* RandomEngine() {
    if (random_engine_ == nullptr) random_engine_ = MakeEngine().release();
    return random_engine_;
  }

  static RunParams SmallRun(int steps) {
    RunParams params;
    params.content = Path("content.png");
    params.style = {Path("style.png")};
    params.image_size = 32;
    params.eval_size = 32;  // the smallest allowed: each evaluation costs a forward pass at this size
    params.steps = steps;
    params.snapshot_every = 0;
    return params;
  }

  static std::unique_ptr<Engine> MakeEngine(const std::string& weights = "") {
    EngineOptions options;
    options.weights_path = weights;
    // 32 px images gain nothing from more threads, and on a busy machine
    // (parallel builds) OpenMP's barriers make several threads much slower.
    options.threads = 1;
    absl::StatusOr<std::unique_ptr<Engine>> engine = CreateTorchEngine(options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }

  static std::string* dir_;
  static Engine* random_engine_;
};

std::string* EngineTest::dir_ = nullptr;
Engine* EngineTest::random_engine_ = nullptr;

// |actual - expected| <= tolerance relative to the larger of the two, or
// to `floor` for values that are zero up to rounding (the content loss of
// the content image itself).
void ExpectRelativelyClose(double actual, double expected, double tolerance, const std::string& what,
                           double floor = 0) {
  EXPECT_LE(std::abs(actual - expected), tolerance * std::max({std::abs(actual), std::abs(expected), floor}))
      << what << ": " << actual << " vs " << expected;
}

// The tutorial's algorithm written out independently of the engine's code:
// its own conv stack, preprocessing, Gram matrices and losses (the test body
// adds TF-form Adam). It computes in double precision, so the comparison
// measures the engine's float32 error alone: about 1e-6 relative on the
// losses and 4e-6 on pixels after two steps, against the 1e-5 asserted.
class ReferenceRoute {
 public:
  ReferenceRoute(const NamedTensors& convs, const RunParams& params, const torch::Tensor& content,
                 const torch::Tensor& style)
      : convs_(convs), params_(params) {
    for (auto& [name, tensor] : convs_) tensor = tensor.to(torch::kDouble);
    torch::NoGradGuard no_grad;
    std::map<int, torch::Tensor> s = Taps(style);
    std::map<int, torch::Tensor> c = Taps(content);
    for (int tap : kStyleTaps) style_targets_.push_back(Gram(s[tap]));
    content_target_ = c[kContentTap];
  }

  struct Result {
    double content, style, tv, total;
    torch::Tensor gradient;
  };

  Result Evaluate(const torch::Tensor& image) {
    torch::Tensor x = image.detach().clone().requires_grad_(true);
    std::map<int, torch::Tensor> f = Taps(x);
    torch::Tensor style = torch::zeros({});
    for (size_t i = 0; i < kStyleTaps.size(); ++i) {
      style = style + (Gram(f[kStyleTaps[i]]) - style_targets_[i]).pow(2).mean();
    }
    style = style * (params_.style_weight / 5);
    torch::Tensor content = (f[kContentTap] - content_target_).pow(2).mean() * params_.content_weight;
    torch::Tensor tv =
        params_.tv_weight * ((x.narrow(2, 1, x.size(2) - 1) - x.narrow(2, 0, x.size(2) - 1)).abs().sum() +
                             (x.narrow(3, 1, x.size(3) - 1) - x.narrow(3, 0, x.size(3) - 1)).abs().sum());
    torch::Tensor total = style + content + tv;
    torch::Tensor gradient = torch::autograd::grad({total}, {x})[0];
    return {content.item<double>(), style.item<double>(), tv.item<double>(), total.item<double>(), gradient};
  }

 private:
  static constexpr int kContentTap = 31;                                 // block5_conv2
  static inline const std::vector<int> kStyleTaps = {1, 6, 11, 20, 29};  // blockN_conv1

  std::map<int, torch::Tensor> Taps(const torch::Tensor& rgb) {
    const torch::Tensor mean = torch::tensor({0.485f, 0.456f, 0.406f}).to(torch::kDouble).view({1, 3, 1, 1});
    const torch::Tensor std = torch::tensor({0.229f, 0.224f, 0.225f}).to(torch::kDouble).view({1, 3, 1, 1});
    torch::Tensor x = (rgb.to(torch::kDouble) - mean) / std;
    std::map<int, torch::Tensor> taps;
    int index = 0;
    size_t conv = 0;
    for (int entry : Vgg19Config()) {
      if (index > kContentTap) break;
      if (entry == 0) {
        x = torch::max_pool2d(x, {2, 2}, {2, 2});
        index += 1;
        continue;
      }
      x = torch::relu(torch::conv2d(x, convs_[2 * conv].second, convs_[2 * conv + 1].second, 1, 1));
      taps[index + 1] = x;
      index += 2;
      ++conv;
    }
    return taps;
  }

  static torch::Tensor Gram(const torch::Tensor& f) {
    const torch::Tensor m = f.view({f.size(1), f.size(2) * f.size(3)});
    return m.matmul(m.transpose(0, 1)) / static_cast<double>(f.size(2) * f.size(3));
  }

  NamedTensors convs_;
  RunParams params_;
  std::vector<torch::Tensor> style_targets_;
  torch::Tensor content_target_;
};

TEST(CachingCpuAllocatorTest, ReusesLargeBlocksAndReleasesThemOnRequest) {
  InstallCachingCpuAllocator();
  ReleaseCachedCpuMemory();
  const CpuMemoryStats before = GetCpuMemoryStats();
  void* first = nullptr;
  {
    torch::Tensor large = torch::empty({1 << 19});  // 2 MiB
    first = large.data_ptr();
    EXPECT_EQ(GetCpuMemoryStats().live_bytes, before.live_bytes + (2u << 20));
  }
  EXPECT_EQ(GetCpuMemoryStats().cached_bytes, 2u << 20);
  {
    torch::Tensor again = torch::ones({1 << 19});
    EXPECT_EQ(again.data_ptr(), first);
    EXPECT_EQ(again.sum().item<float>(), static_cast<float>(1 << 19));  // a reused block holds what is written
    EXPECT_EQ(GetCpuMemoryStats().reuses, before.reuses + 1);
    torch::Tensor small = torch::empty({1000});  // below 1 MiB: not cached
    EXPECT_EQ(GetCpuMemoryStats().live_bytes, before.live_bytes + (2u << 20));
  }
  EXPECT_EQ(GetCpuMemoryStats().cached_bytes, 2u << 20);
  {
    // Another size is a fresh block; the cached one stays for its size.
    torch::Tensor other = torch::empty({3 << 18});  // 3 MiB
    EXPECT_EQ(GetCpuMemoryStats().cached_bytes, 2u << 20);
    EXPECT_EQ(GetCpuMemoryStats().fresh, before.fresh + 2);
  }
  ReleaseCachedCpuMemory();
  EXPECT_EQ(GetCpuMemoryStats().cached_bytes, 0u);
  EXPECT_EQ(GetCpuMemoryStats().live_bytes, before.live_bytes);
}

// The fused Gram/mean-squared loss against autograd through the plain
// formula, on channels-last and contiguous activations alike.
TEST(GramMseLossTest, MatchesAutogradThroughThePlainFormula) {
  torch::manual_seed(7);
  for (const auto format : {at::MemoryFormat::ChannelsLast, at::MemoryFormat::Contiguous}) {
    const torch::Tensor base = torch::relu(torch::randn({1, 24, 9, 13}, torch::kDouble)).contiguous(format);
    const torch::Tensor target = torch::randn({24, 24}, torch::kDouble).abs();

    const torch::Tensor fused_input = base.clone().requires_grad_(true);
    const torch::Tensor fused = GramMseLoss(fused_input, target) * 3.0;
    const torch::Tensor fused_grad = torch::autograd::grad({fused}, {fused_input})[0];

    const torch::Tensor plain_input = base.clone().requires_grad_(true);
    const torch::Tensor f = plain_input.reshape({24, 9 * 13});
    const torch::Tensor plain = ((torch::mm(f, f.t()) / (9.0 * 13.0) - target).pow(2).mean()) * 3.0;
    const torch::Tensor plain_grad = torch::autograd::grad({plain}, {plain_input})[0];

    EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-12 * plain.item<double>());
    EXPECT_EQ(fused_grad.sizes(), plain_grad.sizes());
    const double error = (fused_grad - plain_grad).abs().max().item<double>();
    EXPECT_LT(error, 1e-10 * plain_grad.abs().max().item<double>()) << "memory format " << format;
  }
}

TEST_F(EngineTest, MatchesAnIndependentComputationOfTheTutorial) {
  // Weights that give the three terms comparable gradients with this
  // network and these images, so each one's gradient is checked (with the
  // tutorial's, total variation would dominate), and a step size that moves
  // the image far enough from the content image for the content loss to be
  // well conditioned.
  RunParams params = SmallRun(2);
  params.style_weight = 1e8;
  params.content_weight = 1e8;
  params.tv_weight = 1;
  params.learning_rate = 0.05;
  const NamedTensors convs = RandomConvs(14, 42);
  ReferenceRoute reference(convs, params, PictureTensor(32, 24, 1), PictureTensor(24, 32, 2));

  // The reference: losses of the images after 0, 1 and 2 TF-Adam updates.
  torch::Tensor x = PictureTensor(32, 24, 1).to(torch::kDouble);
  torch::Tensor m = torch::zeros_like(x), v = torch::zeros_like(x);
  std::vector<ReferenceRoute::Result> expected;
  for (int t = 1; t <= 3; ++t) {
    expected.push_back(reference.Evaluate(x));
    if (t == 3) break;
    const torch::Tensor& g = expected.back().gradient;
    m = 0.99 * m + 0.01 * g;
    v = 0.999 * v + 0.001 * g * g;
    const double lr_t = params.learning_rate * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.99, t));
    x = torch::clamp(x - lr_t * m / (torch::sqrt(v) + 0.1), 0, 1);
  }

  absl::StatusOr<Vgg19Features> net = LoadVgg19(WeightsFile());
  ASSERT_TRUE(net.ok()) << net.status();
  Recorded recorded;
  Record(recorded);
  torch::Tensor image;
  ASSERT_TRUE(RunStyleTransfer(*net, params, StyleTransferOptions(), recorded.callbacks, &image).ok());

  ASSERT_EQ(recorded.rows.size(), 3u);
  for (int t = 0; t < 3; ++t) {
    const StepMetrics& row = recorded.rows[t];
    const std::string at = "step " + std::to_string(t);
    EXPECT_EQ(row.step, t);
    ExpectRelativelyClose(row.content, expected[t].content, 1e-5, at + " content", 1e-6 * expected[t].total);
    ExpectRelativelyClose(row.style, expected[t].style, 1e-5, at + " style");
    ExpectRelativelyClose(row.tv, expected[t].tv, 1e-5, at + " tv");
    ExpectRelativelyClose(row.total, expected[t].total, 1e-5, at + " total");
  }
  EXPECT_GT(recorded.rows[1].content, 0);  // the image moved
  ASSERT_EQ(image.sizes(), x.sizes());
  EXPECT_LE((image - x).abs().max().item<double>(), 1e-5 * x.abs().max().item<double>());

  // The engine (threads, weights cache, validation around the same loop)
  // reports the same step 0.
  std::unique_ptr<Engine> engine = MakeEngine(WeightsFile());
  ASSERT_NE(engine, nullptr);
  Recorded via_engine;
  Record(via_engine);
  params.steps = 1;
  ASSERT_TRUE(engine->Run(params, via_engine.callbacks).ok());
  ExpectRelativelyClose(via_engine.rows[0].total, expected[0].total, 1e-5, "engine step 0 total");
}

TEST_F(EngineTest, ReportsEveryStepAndSnapshotsOnSchedule) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->Describe(), "cpu, 1 thread, random weights");

  RunParams params = SmallRun(5);
  params.snapshot_every = 2;
  Recorded recorded;
  Record(recorded);
  ASSERT_TRUE(engine->Run(params, recorded.callbacks).ok());

  ASSERT_EQ(recorded.rows.size(), 6u);
  for (int t = 0; t <= 5; ++t) {
    const StepMetrics& row = recorded.rows[t];
    EXPECT_EQ(row.step, t);
    EXPECT_EQ(row.style_per_layer.size(), 5u);
    double per_layer = 0;
    for (double s : row.style_per_layer) per_layer += s;
    ExpectRelativelyClose(per_layer, row.style, 1e-5, "sum of style layers");
    ExpectRelativelyClose(row.content + row.style + row.tv, row.total, 1e-5, "total");
    if (t == 0) {
      EXPECT_EQ(row.step_seconds, 0);
      EXPECT_LT(row.content, 1e-6 * row.total);  // the image starts as the content image
    } else {
      EXPECT_GT(row.step_seconds, 0);
    }
  }
  EXPECT_LT(recorded.rows[5].total, recorded.rows[0].total);

  std::vector<int> steps;
  for (const auto& [step, png] : recorded.snapshots) {
    steps.push_back(step);
    absl::StatusOr<Image> image = DecodeImage(png, "snapshot");
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, 32);
    EXPECT_EQ(image->height, 24);
  }
  EXPECT_THAT(steps, ElementsAre(2, 4, 5));

  // The final step is snapshotted once even when it is also on the schedule,
  // and with snapshot_every 0 it is the only one.
  params.steps = 4;
  Recorded on_schedule;
  Record(on_schedule);
  ASSERT_TRUE(engine->Run(params, on_schedule.callbacks).ok());
  EXPECT_EQ(on_schedule.snapshots.size(), 2u);
  EXPECT_EQ(on_schedule.snapshots.count(4), 1u);
  params.snapshot_every = 0;
  Recorded final_only;
  Record(final_only);
  ASSERT_TRUE(engine->Run(params, final_only.callbacks).ok());
  EXPECT_EQ(final_only.snapshots.size(), 1u);
  EXPECT_EQ(final_only.snapshots.count(4), 1u);
}

TEST_F(EngineTest, RandomWeightsBalanceTheStyleLayers) {
  // Normalised by their targets, no layer's term dwarfs the others, as raw
  // terms of a random network do (by orders of magnitude).
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  Recorded recorded;
  Record(recorded);
  ASSERT_TRUE(engine->Run(SmallRun(1), recorded.callbacks).ok());
  const std::vector<double>& layers = recorded.rows[0].style_per_layer;
  const auto [low, high] = std::minmax_element(layers.begin(), layers.end());
  EXPECT_GT(*low, 0);
  EXPECT_LT(*high / *low, 1e3);
}

class SameSeedTest : public EngineTest, public ::testing::WithParamInterface<std::pair<std::string, std::string>> {};

TEST_P(SameSeedTest, GivesABitIdenticalImage) {
  RunParams params = SmallRun(3);
  params.seed = 11;
  params.optimizer = GetParam().first;
  params.init = GetParam().second;
  std::string first, second, fresh;
  auto final_png = [](std::string* out) {
    EngineCallbacks callbacks;
    callbacks.on_snapshot = [out](int, const std::string& png) {
      *out = png;
      return absl::OkStatus();
    };
    return callbacks;
  };
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Run(params, final_png(&first)).ok());
  ASSERT_TRUE(engine->Run(params, final_png(&second)).ok());
  std::unique_ptr<Engine> other = MakeEngine();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Run(params, final_png(&fresh)).ok());
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, fresh);
  if (params.init == "noise") {  // and the noise follows the seed
    params.seed = 12;
    std::string other_seed;
    ASSERT_TRUE(engine->Run(params, final_png(&other_seed)).ok());
    EXPECT_NE(first, other_seed);
  }
}

INSTANTIATE_TEST_SUITE_P(Options, SameSeedTest,
                         ::testing::Values(std::pair<std::string, std::string>{"adam", "content"},
                                           std::pair<std::string, std::string>{"lbfgs", "content"},
                                           std::pair<std::string, std::string>{"adam", "noise"}),
                         [](const auto& info) { return info.param.first + "_" + info.param.second; });

// The rows of a run of the shared random engine.
std::vector<StepMetrics> Rows(Engine* engine, const RunParams& params) {
  Recorded recorded;
  Record(recorded);
  absl::Status status = engine->Run(params, recorded.callbacks);
  EXPECT_TRUE(status.ok()) << status;
  return recorded.rows;
}

TEST_F(EngineTest, AveragePoolingChangesTheLoss) {
  RunParams params = SmallRun(1);
  const std::vector<StepMetrics> max_pool = Rows(RandomEngine(), params);
  params.pooling = "avg";
  const std::vector<StepMetrics> avg_pool = Rows(RandomEngine(), params);
  // block1_conv1 comes before any pool: the same; deeper layers differ.
  EXPECT_DOUBLE_EQ(avg_pool[0].style_per_layer[0], max_pool[0].style_per_layer[0]);
  EXPECT_NE(avg_pool[0].style_per_layer[2], max_pool[0].style_per_layer[2]);
}

TEST_F(EngineTest, StyleLayerWeightsScaleEachLayersTerm) {
  RunParams params = SmallRun(1);
  const std::vector<StepMetrics> plain = Rows(RandomEngine(), params);
  params.style_layer_weights = {0, 1, 2, 1, 1};
  const std::vector<StepMetrics> weighted = Rows(RandomEngine(), params);
  EXPECT_EQ(weighted[0].style_per_layer[0], 0);
  ExpectRelativelyClose(weighted[0].style_per_layer[1], plain[0].style_per_layer[1], 1e-6, "layer 2");
  ExpectRelativelyClose(weighted[0].style_per_layer[2], 2 * plain[0].style_per_layer[2], 1e-6, "layer 3");
}

TEST_F(EngineTest, LbfgsLowersTheLossFasterThanAdam) {
  RunParams params = SmallRun(5);
  const std::vector<StepMetrics> adam = Rows(RandomEngine(), params);
  params.optimizer = "lbfgs";
  const std::vector<StepMetrics> lbfgs = Rows(RandomEngine(), params);
  ASSERT_EQ(lbfgs.size(), 6u);
  EXPECT_DOUBLE_EQ(lbfgs[0].total, adam[0].total);
  for (int t = 1; t <= 5; ++t) EXPECT_LT(lbfgs[t].total, lbfgs[t - 1].total) << "step " << t;
  EXPECT_LT(lbfgs[5].total, adam[5].total);
}

// L-BFGS optimises the image unclipped (clipping between iterations breaks
// its curvature pairs), so every iteration lowers the loss, and 30 of them
// go well below 30 Adam steps (29.2 against 37.8 here); what it hands over
// is clipped.
TEST_F(EngineTest, UnclippedLbfgsConvergesAndHandsOverAClippedImage) {
  absl::StatusOr<Vgg19Features> net = LoadVgg19(WeightsFile());
  ASSERT_TRUE(net.ok()) << net.status();
  StyleTransferOptions options;
  options.normalise_by_targets = true;
  RunParams params = SmallRun(30);
  params.image_size = 48;
  params.style_weight = 1e3;
  params.content_weight = 1;
  params.tv_weight = 1e-3;
  Recorded adam;
  Record(adam);
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, adam.callbacks).ok());
  params.optimizer = "lbfgs";
  params.snapshot_every = 10;
  Recorded lbfgs;
  Record(lbfgs);
  torch::Tensor image;
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, lbfgs.callbacks, &image).ok());
  ASSERT_EQ(lbfgs.rows.size(), 31u);
  for (int t = 1; t <= 30; ++t) EXPECT_LE(lbfgs.rows[t].total, lbfgs.rows[t - 1].total) << "iteration " << t;
  EXPECT_LT(lbfgs.rows[30].total, 0.85 * adam.rows[30].total);

  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 3, 36, 48}));
  EXPECT_GE(image.min().item<float>(), 0);
  EXPECT_LE(image.max().item<float>(), 1);
  // The last snapshot is that image.
  absl::StatusOr<Image> snapshot = DecodeImage(lbfgs.snapshots.at(30), "snapshot");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const torch::Tensor decoded =
      torch::from_blob(snapshot->pixels.data(), {36, 48, 3}, torch::kFloat).permute({2, 0, 1}).unsqueeze(0);
  EXPECT_LE((decoded - image).abs().max().item<double>(), 0.5 / 255 + 1e-6);
  EXPECT_THAT(lbfgs.snapshots, ::testing::SizeIs(3));
}

TEST_F(EngineTest, TorchFormAdamIsADifferentOptimiser) {
  RunParams params = SmallRun(2);
  const std::vector<StepMetrics> tf = Rows(RandomEngine(), params);
  params.adam_epsilon_mode = "torch";
  const std::vector<StepMetrics> torch_form = Rows(RandomEngine(), params);
  EXPECT_DOUBLE_EQ(torch_form[0].total, tf[0].total);
  EXPECT_NE(torch_form[2].total, tf[2].total);
  EXPECT_LT(torch_form[2].total, torch_form[0].total);
}

TEST_F(EngineTest, InitialImageFollowsInit) {
  RunParams params = SmallRun(1);
  const std::vector<StepMetrics> content = Rows(RandomEngine(), params);
  EXPECT_LT(content[0].content, 1e-6 * content[0].total);
  for (const char* init : {"style", "noise"}) {
    params.init = init;
    const std::vector<StepMetrics> rows = Rows(RandomEngine(), params);
    EXPECT_GT(rows[0].content, 0.01 * rows[0].total) << init;
    EXPECT_NE(rows[0].style, content[0].style) << init;
  }
}

TEST_F(EngineTest, StyleScaleChangesTheTargets) {
  RunParams params = SmallRun(1);
  const std::vector<StepMetrics> plain = Rows(RandomEngine(), params);
  params.style_scale = 1.5;
  const std::vector<StepMetrics> scaled = Rows(RandomEngine(), params);
  EXPECT_NE(scaled[0].style, plain[0].style);
  EXPECT_DOUBLE_EQ(scaled[0].content, plain[0].content);

  // A style image too small for the deepest layer is named.
  params.style_scale = 0.5;
  absl::Status small = RandomEngine()->Run(params, {});
  EXPECT_EQ(small.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small.message()), AllOf(HasSubstr("style image"), HasSubstr("12x16"), HasSubstr("16 px")));
}

TEST_F(EngineTest, Bf16LossesAreCloseToFp32) {
  RunParams params = SmallRun(2);
  const std::vector<StepMetrics> fp32 = Rows(RandomEngine(), params);
  params.precision = "bf16";
  const std::vector<StepMetrics> bf16 = Rows(RandomEngine(), params);
  ExpectRelativelyClose(bf16[0].total, fp32[0].total, 0.05, "step 0 total");
  ExpectRelativelyClose(bf16[0].style, fp32[0].style, 0.05, "step 0 style");
  EXPECT_LT(bf16[2].total, bf16[0].total);
}

// YIQ's chroma (I, Q) of a 1 x 3 x H x W RGB image.
torch::Tensor Chroma(const torch::Tensor& rgb) {
  const torch::Tensor m = torch::tensor({0.596f, -0.274f, -0.322f, 0.211f, -0.523f, 0.312f}).view({2, 3});
  return torch::einsum("ij,njhw->nihw", {m, rgb});
}

TEST_F(EngineTest, PreserveColorsKeepsTheContentsChroma) {
  absl::StatusOr<Vgg19Features> net = LoadVgg19(WeightsFile());
  ASSERT_TRUE(net.ok()) << net.status();
  RunParams params = SmallRun(5);
  params.learning_rate = 0.1;
  StyleTransferOptions options;
  options.normalise_by_targets = true;
  torch::Tensor plain, preserved;
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, {}, &plain).ok());
  params.preserve_colors = true;
  Recorded recorded;
  Record(recorded);
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, recorded.callbacks, &preserved).ok());
  const torch::Tensor content_chroma = Chroma(PictureTensor(32, 24, 1));
  const double plain_error = (Chroma(plain) - content_chroma).abs().mean().item<double>();
  const double preserved_error = (Chroma(preserved) - content_chroma).abs().mean().item<double>();
  EXPECT_GT(plain_error, 0.005);
  EXPECT_LT(preserved_error, 0.2 * plain_error);  // clipping to [0, 1] moves a little chroma
  // Luminance is the optimised image's.
  const torch::Tensor luma = torch::tensor({0.299f, 0.587f, 0.114f}).view({1, 3, 1, 1});
  EXPECT_LT(((preserved - plain) * luma).sum(1).abs().mean().item<double>(), 0.2 * plain_error);
  // The final snapshot is the colour-preserved image.
  absl::StatusOr<Image> snapshot = DecodeImage(recorded.snapshots.at(5), "snapshot");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const torch::Tensor decoded =
      torch::from_blob(snapshot->pixels.data(), {24, 32, 3}, torch::kFloat).permute({2, 0, 1}).unsqueeze(0);
  EXPECT_LT((decoded - preserved).abs().max().item<double>(), 1.0 / 255);
}

TEST_F(EngineTest, MultiresNumbersStepsAcrossStages) {
  RunParams params = SmallRun(1);
  params.multires_sizes = {24, 32};
  params.multires_steps = {2, 3};
  params.snapshot_every = 2;
  Recorded recorded;
  Record(recorded);
  ASSERT_TRUE(RandomEngine()->Run(params, recorded.callbacks).ok());
  ASSERT_EQ(recorded.rows.size(), 6u);  // steps 0..5: one row per step, as without stages
  for (int t = 0; t <= 5; ++t) EXPECT_EQ(recorded.rows[t].step, t);
  std::map<int, std::pair<int, int>> sizes;
  for (const auto& [step, png] : recorded.snapshots) {
    absl::StatusOr<Image> image = DecodeImage(png, "snapshot");
    ASSERT_TRUE(image.ok()) << image.status();
    sizes[step] = {image->width, image->height};
  }
  using Size = std::pair<int, int>;
  EXPECT_THAT(sizes, ElementsAre(std::pair{2, Size{24, 18}}, std::pair{4, Size{32, 24}}, std::pair{5, Size{32, 24}}));
}

TEST_F(EngineTest, StyleTargetsAreCachedAcrossRuns) {
  absl::StatusOr<Vgg19Features> net = LoadVgg19(WeightsFile());
  ASSERT_TRUE(net.ok()) << net.status();
  StyleTargetCache cache(2);
  StyleTransferOptions options;
  options.style_cache = &cache;
  RunParams params = SmallRun(1);
  Recorded first, second, other;
  Record(first);
  Record(second);
  Record(other);
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, first.callbacks).ok());
  params.content_weight = 5;  // targets do not depend on it
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, second.callbacks).ok());
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(second.rows[0].style, first.rows[0].style);
  params.pooling = "avg";  // they do on pooling
  ASSERT_TRUE(RunStyleTransfer(*net, params, options, other.callbacks).ok());
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_NE(other.rows[0].style, first.rows[0].style);
}

TEST_F(EngineTest, EvaluatesStepZeroSnapshotsTheLastStepAndRequestedSteps) {
  RunParams params = SmallRun(12);
  params.snapshot_every = 5;
  params.style_weight = 1e2;  // style dominates (the tutorial's weights mostly smooth a random network's image)
  params.content_weight = 1;
  params.tv_weight = 0;
  params.learning_rate = 0.05;
  Recorded recorded;
  Record(recorded);
  std::vector<int> asked;
  recorded.callbacks.evaluate_at = [&asked](int step) {
    asked.push_back(step);
    return step == 3;
  };
  ASSERT_TRUE(RandomEngine()->Run(params, recorded.callbacks).ok());
  ASSERT_EQ(recorded.rows.size(), 13u);
  std::vector<int> evaluated;
  for (const StepMetrics& row : recorded.rows) {
    if (!row.eval) {
      EXPECT_EQ(row.eval_seconds, 0) << row.step;
      continue;
    }
    evaluated.push_back(row.step);
    EXPECT_TRUE(CheckEvaluation(*row.eval).ok()) << row.step << ": " << CheckEvaluation(*row.eval);
    EXPECT_GT(row.eval_seconds, 0) << row.step;
  }
  EXPECT_THAT(evaluated, ElementsAre(0, 3, 5, 10, 12));
  for (int step = 0; step <= 12; ++step) EXPECT_NE(std::find(asked.begin(), asked.end(), step), asked.end()) << step;
  // Step 0 is the content image itself, at the eval size of this run.
  const Evaluation& start = *recorded.rows[0].eval;
  EXPECT_NEAR(start.style_norm, 1, 1e-5);
  EXPECT_LE(start.content_norm, 1e-9);
  EXPECT_NEAR(start.ssim, 1, 1e-5);
  // The run moves the image towards the style.
  EXPECT_LT(recorded.rows[12].eval->style_norm, 1);
  EXPECT_GT(recorded.rows[12].eval->content_norm, 0);

  // Without evaluate_at: step 0, the snapshots and the last step.
  params.steps = 7;
  Recorded plain;
  Record(plain);
  ASSERT_TRUE(RandomEngine()->Run(params, plain.callbacks).ok());
  evaluated.clear();
  for (const StepMetrics& row : plain.rows) {
    if (row.eval) evaluated.push_back(row.step);
  }
  EXPECT_THAT(evaluated, ElementsAre(0, 5, 7));
}

TEST_F(EngineTest, MultiresStagesAreEvaluatedAtTheEvalSize) {
  RunParams params = SmallRun(1);
  params.multires_sizes = {24, 32};
  params.multires_steps = {2, 2};
  Recorded recorded;
  Record(recorded);
  recorded.callbacks.evaluate_at = [](int) { return true; };
  ASSERT_TRUE(RandomEngine()->Run(params, recorded.callbacks).ok());
  ASSERT_EQ(recorded.rows.size(), 5u);
  for (const StepMetrics& row : recorded.rows) {
    ASSERT_TRUE(row.eval.has_value()) << row.step;
    EXPECT_TRUE(CheckEvaluation(*row.eval).ok()) << row.step << ": " << CheckEvaluation(*row.eval);
  }
  // Step 0 is the content image at 24 px, measured at 32: not exactly the
  // content itself.
  EXPECT_GT(recorded.rows[0].eval->content_norm, 0);
}

// Evaluation reads the image and the network and changes neither: losses and
// images are bit-identical whether every step is evaluated or only the few
// that always are.
TEST_F(EngineTest, EvaluationDoesNotChangeTheRun) {
  for (const char* optimizer : {"adam", "lbfgs"}) {
    RunParams params = SmallRun(6);
    params.optimizer = optimizer;
    params.snapshot_every = 2;
    Recorded every, few;
    Record(every);
    Record(few);
    every.callbacks.evaluate_at = [](int) { return true; };
    ASSERT_TRUE(RandomEngine()->Run(params, every.callbacks).ok());
    ASSERT_TRUE(RandomEngine()->Run(params, few.callbacks).ok());
    ASSERT_EQ(every.rows.size(), few.rows.size());
    int evaluated_every = 0, evaluated_few = 0;
    for (size_t t = 0; t < every.rows.size(); ++t) {
      const StepMetrics &a = every.rows[t], &b = few.rows[t];
      EXPECT_EQ(a.total, b.total) << optimizer << " step " << t;
      EXPECT_EQ(a.content, b.content) << optimizer << " step " << t;
      EXPECT_EQ(a.style, b.style) << optimizer << " step " << t;
      EXPECT_EQ(a.tv, b.tv) << optimizer << " step " << t;
      EXPECT_EQ(a.style_per_layer, b.style_per_layer) << optimizer << " step " << t;
      evaluated_every += a.eval.has_value();
      evaluated_few += b.eval.has_value();
      if (a.eval && b.eval) {
        EXPECT_EQ(*a.eval, *b.eval) << optimizer << " step " << t;
      }
    }
    EXPECT_EQ(evaluated_every, 7) << optimizer;
    EXPECT_EQ(evaluated_few, 4) << optimizer;  // 0, 2, 4, 6
    EXPECT_EQ(every.snapshots, few.snapshots) << optimizer;
  }
}

// The evaluation ranks runs of different weights the way the weights pull:
// with more style weight the final image is closer to the style and further
// from the content. Settings found on this random network and these
// pictures (the trade-off holds for 10 to 30 steps, learning rates 0.02 to
// 0.05, and tv_weight 0 or 0.001); beyond a style weight of 1000 the image
// moves no further in 20 steps, so the metrics stop moving too.
TEST_F(EngineTest, MoreStyleWeightGivesMoreStyleAndLessContent) {
  std::vector<Evaluation> finals;
  for (double style_weight : {0.1, 1.0, 10.0, 100.0, 1000.0}) {
    RunParams params = SmallRun(20);  // 32 px, eval_size 32
    params.style_weight = style_weight;
    params.content_weight = 1;
    params.tv_weight = 0;
    params.learning_rate = 0.05;
    const std::vector<StepMetrics> rows = Rows(RandomEngine(), params);
    ASSERT_EQ(rows.size(), 21u);
    ASSERT_TRUE(rows.back().eval.has_value());
    finals.push_back(*rows.back().eval);
  }
  for (size_t i = 1; i < finals.size(); ++i) {
    EXPECT_LT(finals[i].style, finals[i - 1].style) << "style weight " << i;
    EXPECT_GT(finals[i].content, finals[i - 1].content) << "style weight " << i;
  }
}

TEST_F(EngineTest, CaffePreprocessingRuns) {
  std::unique_ptr<Engine> engine = MakeEngine(WeightsFile());
  ASSERT_NE(engine, nullptr);
  RunParams params = SmallRun(1);
  Recorded torchvision, caffe;
  Record(torchvision);
  Record(caffe);
  ASSERT_TRUE(engine->Run(params, torchvision.callbacks).ok());
  params.preprocess = "caffe";
  ASSERT_TRUE(engine->Run(params, caffe.callbacks).ok());
  // 0..255 inputs give activations tens of times larger, Gram terms ~10^6 x.
  EXPECT_GT(caffe.rows[0].style, torchvision.rows[0].style * 1e3);
}

TEST_F(EngineTest, ShouldStopCancelsBetweenSteps) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  Recorded recorded;
  Record(recorded);
  recorded.callbacks.should_stop = [&recorded] { return recorded.rows.size() >= 2; };
  absl::Status status = engine->Run(SmallRun(50), recorded.callbacks);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(recorded.rows.size(), 2u);
  EXPECT_TRUE(recorded.snapshots.empty());
}

// A real divergence, found by trying weights on this network: L-BFGS with
// content_weight 1e34 at 32 px. Its first iteration keeps the image (the
// line search finds no step the huge content term allows) and its second
// makes it NaN, so step 2's content loss is NaN. Adam does not diverge on
// large weights: once a gradient's square overflows float32 its step is 0,
// and the image stops where its losses are still finite.
TEST_F(EngineTest, ADivergingRunEndsWithItsLastFiniteImage) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  RunParams params = SmallRun(6);
  params.optimizer = "lbfgs";
  params.style_weight = 1e4;
  params.content_weight = 1e34;
  Recorded diverged;
  Record(diverged);
  const absl::Status status = engine->Run(params, diverged.callbacks);
  ASSERT_EQ(DivergedStep(status), 2) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(status.message(), "diverged at step 2: content loss is NaN");
  // Only the finite rows.
  ASSERT_EQ(diverged.rows.size(), 2u);
  for (int step = 0; step < 2; ++step) {
    const StepMetrics& m = diverged.rows[step];
    EXPECT_EQ(m.step, step);
    for (double value : {m.content, m.style, m.tv, m.total}) EXPECT_TRUE(std::isfinite(value)) << step;
  }
  // The image of step 1, as a run of one step ends with it, handed over as
  // the last snapshot.
  ASSERT_EQ(diverged.snapshots.size(), 1u);
  ASSERT_EQ(diverged.snapshots.count(1), 1u);
  absl::StatusOr<Image> image = DecodeImage(diverged.snapshots[1], "snapshot");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 32);
  EXPECT_EQ(image->height, 24);
  RunParams one_step = params;
  one_step.steps = 1;
  Recorded finite;
  Record(finite);
  ASSERT_TRUE(engine->Run(one_step, finite.callbacks).ok());
  ASSERT_EQ(finite.snapshots.count(1), 1u);
  EXPECT_TRUE(diverged.snapshots[1] == finite.snapshots[1]) << "the last snapshot is not step 1's image";

  // When step 1's snapshot was due anyway, it is not taken twice (Record
  // checks) and is still the last.
  params.snapshot_every = 1;
  Recorded scheduled;
  Record(scheduled);
  EXPECT_EQ(DivergedStep(engine->Run(params, scheduled.callbacks)), 2);
  ASSERT_EQ(scheduled.snapshots.size(), 1u);
  EXPECT_TRUE(scheduled.snapshots[1] == finite.snapshots[1]) << "the last snapshot is not step 1's image";
}

TEST_F(EngineTest, ALossThatOverflowsAtTheStartDivergesAtStepZeroWithoutAnImage) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  RunParams params = SmallRun(3);
  params.style_weight = 1e36;  // each layer's term is ~1 on this network: their float32 sum overflows
  Recorded recorded;
  Record(recorded);
  const absl::Status status = engine->Run(params, recorded.callbacks);
  EXPECT_EQ(DivergedStep(status), 0) << status;
  EXPECT_EQ(status.message(), "diverged at step 0: style loss is inf");
  EXPECT_TRUE(recorded.rows.empty());
  EXPECT_TRUE(recorded.snapshots.empty());
}

TEST_F(EngineTest, FailingSnapshotAbortsTheRun) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  RunParams params = SmallRun(6);
  params.snapshot_every = 2;
  int rows = 0;
  EngineCallbacks callbacks;
  callbacks.on_step = [&rows](const StepMetrics&) { ++rows; };
  callbacks.on_snapshot = [](int, const std::string&) { return absl::ResourceExhaustedError("disk full"); };
  absl::Status status = engine->Run(params, callbacks);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(rows, 3);  // steps 0, 1, 2
}

TEST_F(EngineTest, UnreadableImagesNameThePath) {
  Engine* engine = RandomEngine();
  ASSERT_NE(engine, nullptr);
  RunParams params = SmallRun(1);
  params.content = Path("missing.png");
  absl::Status missing = engine->Run(params, {});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), AllOf(HasSubstr("content image"), HasSubstr(Path("missing.png"))));

  WriteBytes(Path("corrupt.png"), "\x89PNG\r\n\x1a\n but no chunks");
  params = SmallRun(1);
  params.style = {Path("corrupt.png")};
  absl::Status corrupt = engine->Run(params, {});
  EXPECT_EQ(corrupt.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(corrupt.message()), AllOf(HasSubstr("style image"), HasSubstr(Path("corrupt.png"))));

  // An image declaring more pixels than the limit is the input's fault, not
  // the device's: InvalidArgument, never out of memory (which would send the
  // run to every other agent in turn).
  WriteBytes(Path("bomb.png"), testing::PngDeclaring(15000, 15000));
  params = SmallRun(1);
  params.content = Path("bomb.png");
  absl::Status bomb = engine->Run(params, {});
  EXPECT_EQ(bomb.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsOutOfMemory(bomb));
  EXPECT_EQ(bomb.message(), "content image: image '" + Path("bomb.png") +
                                "' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi pixels "
                                "(67108864, e.g. 8192x8192)");
}

TEST_F(EngineTest, BadParametersAndLayersBeyondTheWeightsAreRejected) {
  WriteDictPickle(Path("two_convs.pth"), RandomConvs(2, 3));
  std::unique_ptr<Engine> engine = MakeEngine(Path("two_convs.pth"));
  ASSERT_NE(engine, nullptr);
  absl::Status deep = engine->Run(SmallRun(1), {});
  EXPECT_EQ(deep.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(deep.message()),
              AllOf(HasSubstr("block2_conv1"), HasSubstr(Path("two_convs.pth")), HasSubstr("block1_conv2")));

  RunParams shallow = SmallRun(1);
  shallow.style_layers = {"relu1_1"};  // aliases are accepted
  shallow.content_layers = {"conv1_2"};
  // The evaluation needs block5_conv1: the run goes on without it.
  Recorded recorded;
  Record(recorded);
  EXPECT_TRUE(engine->Run(shallow, recorded.callbacks).ok());
  ASSERT_EQ(recorded.rows.size(), 2u);
  for (const StepMetrics& row : recorded.rows) EXPECT_FALSE(row.eval.has_value()) << row.step;

  shallow.steps = 0;
  EXPECT_EQ(engine->Run(shallow, {}).code(), absl::StatusCode::kInvalidArgument);
}

// A sweep's `weights:` replaces the agent's own network for that run: the
// losses are those of an engine created with the file, and a file that is not
// on the agent's machine fails the run with a message that says what to do.
TEST_F(EngineTest, RunWeightsReplaceTheEnginesOwn) {
  auto final_total = [](Engine& engine, const RunParams& params) {
    double total = -1;
    EngineCallbacks callbacks;
    callbacks.on_step = [&](const StepMetrics& m) { total = m.total; };
    absl::Status status = engine.Run(params, callbacks);
    EXPECT_TRUE(status.ok()) << status;
    return total;
  };
  RunParams params = SmallRun(2);
  const double random_total = final_total(*RandomEngine(), params);
  std::unique_ptr<Engine> with_file = MakeEngine(WeightsFile());
  ASSERT_NE(with_file, nullptr);
  const double file_total = final_total(*with_file, params);

  params.weights = WeightsFile();
  EXPECT_EQ(final_total(*RandomEngine(), params), file_total);
  EXPECT_NE(file_total, random_total);
  params.weights = "";
  EXPECT_EQ(final_total(*RandomEngine(), params), random_total);  // style targets are not shared across networks

  params.weights = Path("not-on-this-machine.pth");
  absl::Status missing = RandomEngine()->Run(params, {});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()),
              AllOf(HasSubstr(Path("not-on-this-machine.pth")), HasSubstr("on every agent")));

  WriteBytes(Path("not-a-model.pth"), "not a model");
  params.weights = Path("not-a-model.pth");
  absl::Status garbage = RandomEngine()->Run(params, {});
  EXPECT_EQ(garbage.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(garbage.message()), HasSubstr("tools/convert_vgg19_weights.py"));
  EXPECT_THAT(std::string(CheckWeightsFile(Path("not-a-model.pth")).message()),
              HasSubstr("tools/convert_vgg19_weights.py"));
  EXPECT_TRUE(CheckWeightsFile(WeightsFile()).ok());
}

TEST_F(EngineTest, UnusableWeightsFailCreationWithTheConvertCommand) {
  WriteBytes(Path("garbage.pth"), "garbage bytes, not a model");
  NamedTensors misshaped = RandomConvs(2, 4);
  misshaped[0].second = torch::zeros({64, 3, 7, 7});
  WriteDictPickle(Path("misshaped.pth"), misshaped);
  for (const std::string name : {"garbage.pth", "misshaped.pth"}) {
    EngineOptions options;
    options.weights_path = Path(name);
    absl::StatusOr<std::unique_ptr<Engine>> engine = CreateTorchEngine(options);
    ASSERT_FALSE(engine.ok()) << name;
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(engine.status().message()),
                AllOf(HasSubstr(Path(name)), HasSubstr("python3 tools/convert_vgg19_weights.py IN.pth OUT.pth")));
  }
}

TEST_F(EngineTest, UnavailableDevicesAreNamed) {
  EngineOptions options;
  options.device = "tpu:0";
  absl::StatusOr<std::unique_ptr<Engine>> tpu = CreateTorchEngine(options);
  EXPECT_EQ(tpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tpu.status().message()), HasSubstr("'tpu:0'"));

  if (torch::cuda::is_available()) GTEST_SKIP() << "this LibTorch has CUDA";
  options.device = "cuda:0";
  absl::StatusOr<std::unique_ptr<Engine>> cuda = CreateTorchEngine(options);
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(cuda.status().message()), HasSubstr("'cuda:0'"));
}

}  // namespace
}  // namespace stylesweep
