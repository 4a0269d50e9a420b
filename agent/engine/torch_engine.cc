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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/engine/engine.h"
#include "agent/engine/cpu_memory.h"
#include "agent/engine/style_transfer.h"
#include "agent/engine/vgg19.h"
#include "agent/engine/weights.h"
#include "common/files.h"
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
      : device_(device), threads_(threads), own_{std::move(weights_path), "", std::move(net)} {
    own_.id = own_.path.empty() ? absl::StrCat("random:", kRandomWeightsSeed) : FileIdentity(own_.path);
  }

  absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) override {
    RunParams p = params;
    if (absl::Status s = p.Validate(); !s.ok()) return s;
    absl::StatusOr<Network*> network = NetworkFor(p);
    if (!network.ok()) return network.status();
    Vgg19Features& net = (*network)->net;
    for (const auto* layers : {&p.style_layers, &p.content_layers}) {
      for (const std::string& layer : *layers) {
        if (LayerFeatureIndex(layer) > net->max_tap()) {
          return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is deeper than the weights file '",
                                                         (*network)->path, "' reaches (its last convolution is ",
                                                         AllLayerNames()[net->num_convs() - 1], ")"));
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
    options.normalise_by_targets = (*network)->path.empty();
    options.style_cache = &style_cache_;
    options.network_id = (*network)->id;
    absl::Status status;
    try {
      status = RunStyleTransfer(net, p, options, callbacks);
    } catch (const c10::OutOfMemoryError& e) {
      status = OutOfMemoryError(absl::StrCat("out of memory on ", device_.str(), " at ", p.image_size,
                                             " px: ", e.what_without_backtrace()));
    } catch (const std::bad_alloc&) {
      status = OutOfMemoryError(absl::StrCat("out of memory on ", device_.str(), " at ", p.image_size, " px"));
    } catch (const c10::Error& e) {
      // LibTorch's CPU allocator reports exhaustion as a plain c10::Error.
      const std::string what = e.what_without_backtrace();
      if (absl::StrContains(what, "not enough memory") || absl::StrContains(what, "out of memory")) {
        status = OutOfMemoryError(absl::StrCat("out of memory on ", device_.str(), " at ", p.image_size, " px: ", what));
      } else {
        status = absl::InternalError(absl::StrCat("style transfer failed: ", what));
      }
    } catch (const std::exception& e) {
      status = absl::InternalError(absl::StrCat("style transfer failed: ", e.what()));
    }
    ReleaseFreedMemory();
    return status;
  }

  std::string Describe() const override {
    return absl::StrCat(device_.str(), ", ", threads_, threads_ == 1 ? " thread" : " threads", ", ",
                        own_.path.empty() ? "random weights" : absl::StrCat("weights: ", own_.path));
  }

 private:
  struct Network {
    std::string path;  // empty: the seeded random network
    std::string id;    // path, size and mtime: changes when the file does
    Vgg19Features net;
  };

  // The engine's own network, or the one the run's `weights` names, loaded
  // on first use and kept while runs keep naming the same file.
  absl::StatusOr<Network*> NetworkFor(const RunParams& p) {
    if (p.weights.empty() || p.weights == own_.path) return &own_;
    const std::string id = FileIdentity(p.weights);
    if (id.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "weights file '", p.weights,
          "' named by the sweep is not on this agent's machine: put the file at that path on every agent (a "
          "shared filesystem works), or leave `weights:` out of "
          "the sweep so that each agent uses its own --weights"));
    }
    if (!sweep_ || sweep_->id != id) {
      sweep_.reset();  // at most one extra network in memory
      absl::StatusOr<Vgg19Features> loaded = LoadVgg19(p.weights);
      if (!loaded.ok()) return loaded.status();
      try {
        (*loaded)->to(device_);
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("cannot move the weights in '", p.weights, "' to ", device_.str(),
                                                ": ", e.what_without_backtrace()));
      }
      sweep_ = Network{p.weights, id, *std::move(loaded)};
    }
    return &*sweep_;
  }

  const torch::Device device_;
  const int threads_;
  Network own_;
  std::optional<Network> sweep_;
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

absl::Status CheckWeightsFile(const std::string& path) {
  absl::StatusOr<Vgg19Features> loaded = LoadVgg19(path);
  return loaded.ok() ? absl::OkStatus() : loaded.status();
}

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
