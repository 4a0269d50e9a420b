#ifndef STYLESWEEP_AGENT_ENGINE_WEIGHTS_H_
#define STYLESWEEP_AGENT_ENGINE_WEIGHTS_H_

// Where the engine's VGG19 parameters come from: a user's weights file, or a
// seeded random network when there is none. Engine-internal (LibTorch types).
// Both functions are thread-safe: they share no state.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/engine/vgg19.h"

namespace stylesweep {

// The command that turns any VGG19 checkpoint torch can read into a file
// LoadVgg19 accepts. Error messages quote it.
inline constexpr char kConvertWeightsCommand[] = "python3 tools/convert_vgg19_weights.py IN.pth OUT.pth";

// Builds a VGG19 trunk from the weights file at `path`. Accepted files, all
// holding torchvision's parameter names ("features.N.weight"/"features.N.bias",
// or "N.weight"/"N.bias" for a bare `features` module; other keys, e.g. the
// classifier's, are ignored):
//   - zip-format torch.save of a dict or an OrderedDict (the usual
//     `torch.save(model.state_dict(), f)`), any float dtype;
//   - a TorchScript module (`torch.jit.script(vgg19().features).save(f)`).
// The file may stop early: the network gets the convolutions it holds, which
// must be a prefix of VGG19's 16 (up to block5_conv2 suffices for the default
// layers). Every convolution found is checked against VGG19's shapes.
//
// Errors name `path`: NotFound when it does not exist; InvalidArgument, with
// kConvertWeightsCommand, for the legacy (pre-1.6) format, a file that is not
// a PyTorch file, a gap in the convolutions, a missing bias or a mis-shaped
// tensor.
absl::StatusOr<Vgg19Features> LoadVgg19(const std::string& path);

// A full VGG19 trunk with random weights, the same on every machine for the
// same `seed` (up to libm's last-bit differences in log(), which survive the
// rounding to float only very rarely): Kaiming-normal (fan-out, as
// torchvision initialises VGG) from std::mt19937_64, biases zero. Takes about
// half a second.
Vgg19Features RandomVgg19(uint64_t seed);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_WEIGHTS_H_
