#include "agent/engine/evaluator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "agent/engine/image_tensor.h"
#include "agent/engine/weights.h"
#include "common/evaluation.h"
#include "tests/agent/engine/pictures.h"
#include "tests/agent/engine/weights_fixtures.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using namespace engine_testing;

class EvaluatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("evaluator_test"));
    // Content and style of the same shape, so the style image at eval size
    // has the content's eval shape; a second style of another shape.
    WritePicture(Path("content.png"), 64, 48, 1);
    WritePicture(Path("style.png"), 64, 48, 2);
    WritePicture(Path("other_style.png"), 48, 64, 3);
    WriteSmoothPicture(Path("smooth_content.png"), 128, 96, 1);
    WriteSmoothPicture(Path("smooth_style.png"), 128, 96, 2);
    net_ = new Vgg19Features(RandomVgg19(0));
  }

  static void TearDownTestSuite() {
    delete net_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  static RunParams Params() {
    RunParams params;
    params.content = Path("content.png");
    params.style = {Path("style.png")};
    params.eval_size = 48;
    return params;
  }

  static std::unique_ptr<Evaluator> Make(const RunParams& params) {
    absl::StatusOr<std::unique_ptr<Evaluator>> evaluator = Evaluator::Create(*net_, params, torch::kCPU);
    EXPECT_TRUE(evaluator.ok()) << evaluator.status();
    EXPECT_NE(evaluator.ok() ? evaluator->get() : nullptr, nullptr);
    return evaluator.ok() ? *std::move(evaluator) : nullptr;
  }

  static torch::Tensor Load(const std::string& name, int long_side) {
    absl::StatusOr<torch::Tensor> image = LoadImageTensor(Path(name), long_side, "test", torch::kCPU);
    EXPECT_TRUE(image.ok()) << image.status();
    return *image;
  }

  static std::string* dir_;
  static Vgg19Features* net_;
};

std::string* EvaluatorTest::dir_ = nullptr;
Vgg19Features* EvaluatorTest::net_ = nullptr;

TEST_F(EvaluatorTest, TheContentImageIsTheContentsReference) {
  std::unique_ptr<Evaluator> evaluator = Make(Params());
  ASSERT_NE(evaluator, nullptr);
  EXPECT_EQ(evaluator->width(), 48);
  EXPECT_EQ(evaluator->height(), 36);
  const Evaluation e = evaluator->Evaluate(Load("content.png", 48));
  EXPECT_TRUE(CheckEvaluation(e).ok()) << CheckEvaluation(e);
  EXPECT_GT(e.style, 0);
  EXPECT_NEAR(e.style_norm, 1, 1e-5);
  EXPECT_LE(e.content, 1e-12);
  EXPECT_LE(e.content_norm, 1e-12);
  EXPECT_GT(e.tv, 0);
  EXPECT_NEAR(e.tv_norm, 1, 1e-5);
  EXPECT_NEAR(e.ssim, 1, 1e-5);
  EXPECT_GT(e.color, 0.001);
  EXPECT_NEAR(e.score(), 0.5, 1e-5);
}

TEST_F(EvaluatorTest, TheStyleImageIsTheStylesReference) {
  std::unique_ptr<Evaluator> evaluator = Make(Params());
  ASSERT_NE(evaluator, nullptr);
  const Evaluation e = evaluator->Evaluate(Load("style.png", 48));
  EXPECT_TRUE(CheckEvaluation(e).ok()) << CheckEvaluation(e);
  EXPECT_LE(e.style, 1e-6);
  EXPECT_LE(e.style_norm, 1e-6);
  EXPECT_GT(e.content, 0);
  EXPECT_NEAR(e.content_norm, 1, 1e-5);
  EXPECT_LE(e.color, 1e-6);
  EXPECT_LT(e.ssim, 0.9);
  EXPECT_NEAR(e.score(), 0.5, 1e-5);
}

TEST_F(EvaluatorTest, AFlatImageHasNoVariation) {
  std::unique_ptr<Evaluator> evaluator = Make(Params());
  ASSERT_NE(evaluator, nullptr);
  const Evaluation e = evaluator->Evaluate(torch::full({1, 3, 36, 48}, 0.5f));
  EXPECT_TRUE(CheckEvaluation(e).ok()) << CheckEvaluation(e);
  EXPECT_EQ(e.tv, 0);
  EXPECT_EQ(e.tv_norm, 0);
  EXPECT_GT(e.content_norm, 0);
  EXPECT_GT(e.color, 0);
}

TEST_F(EvaluatorTest, MeasuresTheClippedImageAtTheContentsEvalShape) {
  std::unique_ptr<Evaluator> evaluator = Make(Params());
  ASSERT_NE(evaluator, nullptr);
  // Values outside [0, 1] count as the clipped image that is saved.
  const torch::Tensor content = Load("content.png", 48);
  const torch::Tensor overshoot = content * 3 - 1;
  EXPECT_EQ(evaluator->Evaluate(overshoot), evaluator->Evaluate(overshoot.clamp(0, 1)));
  EXPECT_FALSE(evaluator->Evaluate(overshoot) == evaluator->Evaluate(content));
  // Other sizes are resized to the eval shape, whatever their aspect ratio.
  const Evaluation squeezed = evaluator->Evaluate(torch::rand({1, 3, 20, 50}));
  EXPECT_TRUE(CheckEvaluation(squeezed).ok()) << CheckEvaluation(squeezed);
}

// The eval_size resize makes images of different runs comparable: the same
// picture made at 128 px and at 64 px evaluates nearly alike at 48 px (what
// the resize loses is the only difference), as long as the picture is
// smooth, as photographs mostly are. (A run smaller than eval_size is
// upsampled, which blurs it: it measures further from the style's fine
// texture than it would at the eval size.)
TEST_F(EvaluatorTest, TheSameImageAtTwoRunSizesEvaluatesAlike) {
  RunParams params = Params();
  params.content = Path("smooth_content.png");
  params.style = {Path("smooth_style.png")};
  std::unique_ptr<Evaluator> evaluator = Make(params);
  ASSERT_NE(evaluator, nullptr);
  auto halfway = [](int size) { return 0.6 * Load("smooth_content.png", size) + 0.4 * Load("smooth_style.png", size); };
  const Evaluation exact = evaluator->Evaluate(halfway(48));
  EXPECT_GT(exact.content_norm, 0.05);  // not the content image
  for (int size : {128, 64}) {
    const Evaluation e = evaluator->Evaluate(halfway(size));
    EXPECT_NEAR(e.score(), exact.score(), 0.1 * exact.score()) << size;
    EXPECT_NEAR(e.style_norm, exact.style_norm, 0.15 * exact.style_norm) << size;
    EXPECT_NEAR(e.content_norm, exact.content_norm, 0.15 * exact.content_norm) << size;
    EXPECT_NEAR(e.ssim, exact.ssim, 0.02) << size;
    EXPECT_NEAR(e.color, exact.color, 0.15 * exact.color) << size;
  }
}

// The setup is fixed: a run's layers, weights, pooling and precision do not
// change how its images are measured.
TEST_F(EvaluatorTest, IgnoresTheRunsLayersPoolingAndPrecision) {
  const torch::Tensor image = 0.5 * Load("content.png", 48) + 0.5 * Load("style.png", 48);
  const Evaluation plain = Make(Params())->Evaluate(image);
  RunParams other = Params();
  other.style_layers = {"block1_conv2"};
  other.content_layers = {"block5_conv4"};
  other.style_weight = 7;
  other.pooling = "avg";
  other.precision = "bf16";
  other.style_layer_weights = {3};
  other.image_size = 96;
  other.style_scale = 2;
  EXPECT_EQ(Make(other)->Evaluate(image), plain);
  // The preprocessing, though, is the run's: it is what the weights expect.
  other.preprocess = "caffe";
  EXPECT_FALSE(Make(other)->Evaluate(image) == plain);
}

TEST_F(EvaluatorTest, BlendsSeveralStylesByTheirWeights) {
  const torch::Tensor image = 0.5 * Load("content.png", 48) + 0.5 * Load("style.png", 48);
  RunParams first = Params();
  RunParams second = Params();
  second.style = {Path("other_style.png")};
  RunParams both = Params();
  both.style = {Path("style.png"), Path("other_style.png")};
  both.style_blend_weights = {1, 0};
  EXPECT_EQ(Make(both)->Evaluate(image), Make(first)->Evaluate(image));
  both.style_blend_weights = {0, 2};
  EXPECT_EQ(Make(both)->Evaluate(image), Make(second)->Evaluate(image));
  both.style_blend_weights = {};
  const Evaluation equal = Make(both)->Evaluate(image);
  EXPECT_TRUE(CheckEvaluation(equal).ok()) << CheckEvaluation(equal);
  EXPECT_FALSE(equal == Make(first)->Evaluate(image));
  EXPECT_FALSE(equal == Make(second)->Evaluate(image));
}

// A flat content image has no texture and no variation: references of 0
// leave the normalised metrics equal to the raw ones.
TEST_F(EvaluatorTest, AZeroReferenceLeavesTheRawValue) {
  Image grey;
  grey.width = 64;
  grey.height = 48;
  grey.pixels.assign(64 * 48 * 3, 0.5f);
  absl::StatusOr<std::string> png = EncodePng(grey);
  ASSERT_TRUE(png.ok());
  WriteBytes(Path("grey.png"), *png);
  RunParams params = Params();
  params.content = Path("grey.png");
  std::unique_ptr<Evaluator> evaluator = Make(params);
  ASSERT_NE(evaluator, nullptr);
  const Evaluation e = evaluator->Evaluate(Load("style.png", 48));
  EXPECT_TRUE(CheckEvaluation(e).ok()) << CheckEvaluation(e);
  EXPECT_GT(e.tv, 0);
  EXPECT_EQ(e.tv_norm, e.tv);
}

TEST_F(EvaluatorTest, ImagesThatCannotBeReadFailAndUnreachableTapsAreNoEvaluation) {
  RunParams params = Params();
  params.style = {Path("missing.png")};
  absl::StatusOr<std::unique_ptr<Evaluator>> missing = Evaluator::Create(*net_, params, torch::kCPU);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("style image: "));

  std::string why_not;
  absl::StatusOr<std::unique_ptr<Evaluator>> shallow =
      Evaluator::Create(Vgg19Features(12), Params(), torch::kCPU, &why_not);
  ASSERT_TRUE(shallow.ok()) << shallow.status();
  EXPECT_EQ(*shallow, nullptr);
  EXPECT_THAT(why_not, HasSubstr("block4_conv4"));

  WritePicture(Path("strip.png"), 64, 8, 4);
  params = Params();
  params.content = Path("strip.png");
  absl::StatusOr<std::unique_ptr<Evaluator>> strip = Evaluator::Create(*net_, params, torch::kCPU, &why_not);
  ASSERT_TRUE(strip.ok()) << strip.status();
  EXPECT_EQ(*strip, nullptr);
  EXPECT_THAT(why_not, HasSubstr("6 px"));
}

}  // namespace
}  // namespace stylesweep
