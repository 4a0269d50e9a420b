// The LibTorch implementation of engine.h: owns the device, the thread count
// and the network (loaded once, reused by every Run), and delegates the
// optimisation to style_transfer.h.

#include <ATen/Parallel.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/engine/engine.h"
#include "agent/engine/cpu_memory.h"
#include "agent/engine/style_transfer.h"
#include "agent/engine/vgg19.h"
#include "agent/engine/weights.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

// Every engine without a weights file builds the same random network, so
// agents' results stay comparable.
constexpr uint64_t kRandomWeightsSeed = 0;

// A run's activations are freed to glibc's heap, which keeps much of them
// (hundreds of MB at 512 px) mapped; hand them back to the system between
// runs, so an idle agent does not hold its largest run's memory.
// Hands the buffers the run cached, and what glibc keeps free, back to the
// system, so that an agent between runs holds only the network.
void ReleaseFreedMemory() {
  ReleaseCachedCpuMemory();
  malloc_trim(0);
}

class TorchEngine : public Engine {
 public:
  TorchEngine(torch::Device device, int threads, std::string weights_path, Vgg19Features net)
      : device_(device), threads_(threads), weights_path_(std::move(weights_path)), net_(std::move(net)) {}

  absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) override {
    RunParams p = params;
    if (absl::Status s = p.Validate(); !s.ok()) return s;
    for (const auto* layers : {&p.style_layers, &p.content_layers}) {
      for (const std::string& layer : *layers) {
        if (LayerFeatureIndex(layer) > net_->max_tap()) {
          return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is deeper than the weights file '",
                                                         weights_path_, "' reaches (its last convolution is ",
                                                         AllLayerNames()[net_->num_convs() - 1], ")"));
        }
      }
    }
    // OpenMP keeps the thread count per calling thread (LibTorch's default
    // here is 1), and the agent may call Run from a thread other than the one
    // that created the engine, so it is set for every run.
    at::set_num_threads(threads_);
    // Nothing in a run draws random numbers today; seeding keeps runs
    // reproducible should anything (a noise initialisation, dropout) ever do.
    torch::manual_seed(p.seed);
    StyleTransferOptions options;
    options.device = device_;
    options.normalise_by_targets = weights_path_.empty();
    options.style_cache = &style_cache_;
    absl::Status status;
    try {
      status = RunStyleTransfer(net_, p, options, callbacks);
    } catch (const c10::Error& e) {
      status = absl::InternalError(absl::StrCat("style transfer failed: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {  // e.g. std::bad_alloc for an image too large for memory
      status = absl::InternalError(absl::StrCat("style transfer failed: ", e.what()));
    }
    ReleaseFreedMemory();
    return status;
  }

  std::string Describe() const override {
    return absl::StrCat(device_.str(), ", ", threads_, threads_ == 1 ? " thread" : " threads", ", ",
                        weights_path_.empty() ? "random weights" : absl::StrCat("weights: ", weights_path_));
  }

 private:
  const torch::Device device_;
  const int threads_;
  const std::string weights_path_;
  Vgg19Features net_;
  // Runs of one sweep on one agent mostly share their style images.
  StyleTargetCache style_cache_;
};

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  std::optional<torch::Device> device;
  try {
    device.emplace(name);
  } catch (const c10::Error&) {
  }
  if (!device || !(device->is_cpu() || device->is_cuda())) {
    return absl::InvalidArgumentError(absl::StrCat("device '", name, "' is not valid; use 'cpu' or 'cuda:N'"));
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", name, "' is not available: this LibTorch has no CUDA support or sees no GPU; use 'cpu'"));
    }
    const int index = device->has_index() ? device->index() : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(absl::StrCat("device '", name, "' is not available: only ",
                                                        torch::cuda::device_count(), " CUDA device(s) visible"));
    }
    device.emplace(torch::kCUDA, index);
  }
  return *device;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateTorchEngine(const EngineOptions& options) {
  absl::StatusOr<torch::Device> device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 0, got ", options.threads));
  }
  if (device->is_cpu()) InstallCachingCpuAllocator();
  const int threads =
      options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  Vgg19Features net(nullptr);
  if (options.weights_path.empty()) {
    // Once per process: `stylesweep local` creates one engine per agent.
    static std::once_flag warned;
    std::call_once(warned, [] {
      spdlog::warn(
          "no VGG19 weights file given: using a seeded random network, which transfers only palette and texture. "
          "For real style transfer pass --weights with torchvision's vgg19-dcbb9e9d.pth, converted once with: {}",
          kConvertWeightsCommand);
    });
    net = RandomVgg19(kRandomWeightsSeed);
  } else {
    absl::StatusOr<Vgg19Features> loaded = LoadVgg19(options.weights_path);
    if (!loaded.ok()) return loaded.status();
    net = *std::move(loaded);
  }
  try {
    net->to(*device);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot move VGG19 to device '", options.device, "': ", e.what_without_backtrace()));
  }
  return std::make_unique<TorchEngine>(*device, threads, options.weights_path, std::move(net));
}

}  // namespace stylesweep
