#include "agent/engine/weights.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/types.h>

#include <filesystem>
#include <string>

#include "agent/engine/vgg19.h"
#include "common/layers.h"
#include "tests/agent/engine/weights_fixtures.h"

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace engine_testing;

class WeightsTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Expects LoadVgg19(path) to fail with InvalidArgument naming the file,
  // `what` and the conversion command.
  void ExpectRejected(const std::string& path, const std::string& what) {
    absl::StatusOr<Vgg19Features> net = LoadVgg19(path);
    ASSERT_FALSE(net.ok());
    EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        std::string(net.status().message()),
        AllOf(HasSubstr(path), HasSubstr(what), HasSubstr("python3 tools/convert_vgg19_weights.py IN.pth OUT.pth")));
  }

  // Expects `net` to hold exactly the convolutions in `tensors`, in order.
  static void ExpectHolds(Vgg19Features& net, const NamedTensors& tensors) {
    ASSERT_EQ(static_cast<size_t>(net->num_convs()) * 2, tensors.size());
    for (int i = 0; i < net->num_convs(); ++i) {
      EXPECT_TRUE(torch::equal(net->conv(i)->weight, tensors[2 * i].second.to(torch::kFloat))) << i;
      EXPECT_TRUE(torch::equal(net->conv(i)->bias, tensors[2 * i + 1].second.to(torch::kFloat))) << i;
      EXPECT_FALSE(net->conv(i)->weight.requires_grad());
    }
  }

  const std::string dir_ = MakeTempDir("weights_test");
};

TEST_F(WeightsTest, ConvIndicesMatchTheLayerNames) {
  for (size_t i = 0; i < kVgg19ConvIndices.size(); ++i) {
    EXPECT_EQ(LayerFeatureIndex(AllLayerNames()[i]), kVgg19ConvIndices[i] + 1) << AllLayerNames()[i];
  }
}

TEST_F(WeightsTest, LoadsADictRootWithOrWithoutThePrefixAndIgnoresOtherKeys) {
  NamedTensors convs = RandomConvs(3, 1);
  NamedTensors with_extras = convs;
  with_extras.emplace_back("classifier.0.weight", torch::ones({4, 4}));
  WriteDictPickle(Path("prefixed.pth"), with_extras);
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("prefixed.pth"));
  ASSERT_TRUE(net.ok()) << net.status();
  ExpectHolds(*net, convs);

  NamedTensors bare = RandomConvs(2, 2, /*prefix=*/"");
  WriteDictPickle(Path("bare.pth"), bare);
  net = LoadVgg19(Path("bare.pth"));
  ASSERT_TRUE(net.ok()) << net.status();
  ExpectHolds(*net, bare);
}

TEST_F(WeightsTest, LoadsAnOrderedDictRoot) {
  NamedTensors convs = RandomConvs(4, 3);
  WriteOrderedDictPickle(Path("state_dict.pth"), convs);
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("state_dict.pth"));
  ASSERT_TRUE(net.ok()) << net.status();
  ExpectHolds(*net, convs);
}

TEST_F(WeightsTest, ConvertsHalfPrecisionToFloat) {
  NamedTensors convs = RandomConvs(1, 4);
  for (auto& [name, tensor] : convs) tensor = tensor.to(torch::kHalf);
  WriteDictPickle(Path("half.pth"), convs);
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("half.pth"));
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ((*net)->conv(0)->weight.scalar_type(), torch::kFloat);
  ExpectHolds(*net, convs);
}

TEST_F(WeightsTest, LoadsATorchScriptModule) {
  NamedTensors convs = RandomConvs(2, 5, /*prefix=*/"");
  torch::jit::Module features("__torch__.Features");
  for (size_t i = 0; i < convs.size(); i += 2) {
    const std::string index = convs[i].first.substr(0, convs[i].first.find('.'));
    torch::jit::Module conv("__torch__.Conv" + index);
    conv.register_parameter("weight", convs[i].second, /*is_buffer=*/false);
    conv.register_parameter("bias", convs[i + 1].second, /*is_buffer=*/false);
    features.register_module(index, conv);
  }
  features.save(Path("features.pt"));
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("features.pt"));
  ASSERT_TRUE(net.ok()) << net.status();
  ExpectHolds(*net, convs);
}

TEST_F(WeightsTest, MissingFileIsNotFound) {
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("absent.pth"));
  EXPECT_EQ(net.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(net.status().message()), HasSubstr(Path("absent.pth")));
}

TEST_F(WeightsTest, RejectsFilesThatAreNotUsableWeights) {
  WriteBytes(Path("garbage.pth"), "this is not a model at all");
  ExpectRejected(Path("garbage.pth"), "is not a PyTorch weights file");

  WriteBytes(Path("empty.pth"), "");
  ExpectRejected(Path("empty.pth"), "is empty");

  // What torch.save(..., _use_new_zipfile_serialization=False) starts with.
  WriteBytes(Path("legacy.pth"), std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15));
  ExpectRejected(Path("legacy.pth"), "legacy");

  std::string zip_head = "PK\x03\x04 but then nothing a zip reader accepts";
  WriteBytes(Path("broken.zip"), zip_head);
  ExpectRejected(Path("broken.zip"), "cannot be read");

  WriteDictPickle(Path("unrelated.pth"), {{"fc.weight", torch::ones({2, 2})}});
  ExpectRejected(Path("unrelated.pth"), "holds no VGG19 convolutions");
}

TEST_F(WeightsTest, RejectsMisShapedGappedAndHalfConvolutions) {
  NamedTensors misshaped = RandomConvs(3, 6);
  misshaped[4].second = torch::zeros({128, 64, 5, 5});  // block2_conv1's weight
  WriteDictPickle(Path("misshaped.pth"), misshaped);
  ExpectRejected(Path("misshaped.pth"), "block2_conv1 shaped [128, 64, 5, 5]");

  NamedTensors gapped = RandomConvs(3, 7);
  gapped.erase(gapped.begin() + 2, gapped.begin() + 4);  // drop block1_conv2
  WriteDictPickle(Path("gapped.pth"), gapped);
  ExpectRejected(Path("gapped.pth"), "lacks block1_conv2");

  NamedTensors half = RandomConvs(2, 8);
  half.pop_back();  // block1_conv2's bias
  WriteDictPickle(Path("half.pth"), half);
  ExpectRejected(Path("half.pth"), "'features.2.bias' is missing");
}

TEST_F(WeightsTest, RandomNetworkIsReproducibleAndKaimingScaled) {
  Vgg19Features a = RandomVgg19(7);
  Vgg19Features b = RandomVgg19(7);
  Vgg19Features c = RandomVgg19(8);
  ASSERT_EQ(a->num_convs(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_TRUE(torch::equal(a->conv(i)->weight, b->conv(i)->weight)) << i;
    EXPECT_FALSE(torch::equal(a->conv(i)->weight, c->conv(i)->weight)) << i;
    EXPECT_FALSE(a->conv(i)->weight.requires_grad());
    EXPECT_EQ(a->conv(i)->bias.abs().max().item<float>(), 0.0f);
    const double expected = std::sqrt(2.0 / (9.0 * kVgg19ConvChannels[i]));
    EXPECT_NEAR(a->conv(i)->weight.std().item<double>(), expected, expected * 0.05) << i;
  }
}

TEST_F(WeightsTest, ForwardReturnsTheRequestedPostReluTaps) {
  Vgg19Features net = RandomVgg19(0);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({1, 3, 32, 48});
  // block5_conv2, block1_conv1 (twice), block3_conv1, in the order asked.
  std::vector<torch::Tensor> taps = net->forward(x, {31, 1, 11, 1});
  ASSERT_EQ(taps.size(), 4u);
  EXPECT_EQ(taps[0].sizes(), torch::IntArrayRef({1, 512, 2, 3}));
  EXPECT_EQ(taps[1].sizes(), torch::IntArrayRef({1, 64, 32, 48}));
  EXPECT_EQ(taps[2].sizes(), torch::IntArrayRef({1, 256, 8, 12}));
  EXPECT_TRUE(torch::equal(taps[1], taps[3]));
  EXPECT_GE(taps[0].min().item<float>(), 0.0f);  // after the ReLU
  EXPECT_TRUE(torch::equal(taps[1], torch::relu(net->conv(0)->forward(x))));
}

TEST_F(WeightsTest, NetworkStopsWhereTheFileDoes) {
  WriteDictPickle(Path("short.pth"), RandomConvs(5, 9));
  absl::StatusOr<Vgg19Features> net = LoadVgg19(Path("short.pth"));
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ((*net)->num_convs(), 5);
  EXPECT_EQ((*net)->max_tap(), LayerFeatureIndex("block3_conv1"));
}

}  // namespace
}  // namespace stylesweep
