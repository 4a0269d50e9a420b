#ifndef STYLESWEEP_TESTS_AGENT_ENGINE_WEIGHTS_FIXTURES_H_
#define STYLESWEEP_TESTS_AGENT_ENGINE_WEIGHTS_FIXTURES_H_

// Weights files for the engine's tests, written here rather than shipped:
// torch::pickle_save writes the same zip format as Python's torch.save, and
// the OrderedDict-root file is assembled opcode by opcode the way Python
// pickles `model.state_dict()`.

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/serialize.h>
#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace stylesweep::engine_testing {

// (name, tensor) in file order.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// torchvision's VGG19 `features`: "M" is a 2x2 max-pool. Written out here
// independently of agent/engine/vgg19.h, so tests can cross-check it.
inline const std::vector<int>& Vgg19Config() {
  static const std::vector<int> config = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                                          512, 512, 512, 512, 0,   512, 512, 512, 512, 0};  // 0: max-pool
  return config;
}

// The first `num_convs` convolutions with seeded random parameters, named
// "<prefix>N.weight" / "<prefix>N.bias" by features index. Kaiming-scaled,
// so activations neither vanish nor explode through the depth.
inline NamedTensors RandomConvs(int num_convs, uint64_t seed, const std::string& prefix = "features.") {
  torch::manual_seed(seed);
  NamedTensors out;
  int index = 0, in_channels = 3, convs = 0;
  for (int entry : Vgg19Config()) {
    if (convs == num_convs) break;
    if (entry == 0) {
      index += 1;
      continue;
    }
    const double stddev = std::sqrt(2.0 / (9.0 * entry));
    out.emplace_back(prefix + std::to_string(index) + ".weight", torch::randn({entry, in_channels, 3, 3}) * stddev);
    out.emplace_back(prefix + std::to_string(index) + ".bias", torch::randn({entry}) * 0.01);
    in_channels = entry;
    index += 2;  // the conv and its ReLU
    ++convs;
  }
  return out;
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A zip-format file whose root is a plain dict (Python: torch.save(dict(sd))).
inline void WriteDictPickle(const std::string& path, const NamedTensors& tensors) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor);
  const std::vector<char> bytes = torch::pickle_save(dict);
  WriteBytes(path, std::string(bytes.begin(), bytes.end()));
}

// A zip-format file whose root is an OrderedDict with a `_metadata`
// attribute, as torch.save(model.state_dict()) writes it.
inline void WriteOrderedDictPickle(const std::string& path, const NamedTensors& tensors) {
  std::string p = "\x80\x02";  // PROTO 2
  auto global = [&p](const std::string& module, const std::string& name) { p += "c" + module + "\n" + name + "\n"; };
  auto str = [&p](const std::string& s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    p += 'X';
    p.append(reinterpret_cast<const char*>(&n), 4);
    p += s;
  };
  auto integer = [&p](int32_t v) {
    p += 'J';
    p.append(reinterpret_cast<const char*>(&v), 4);
  };
  auto ordered_dict = [&] {
    global("collections", "OrderedDict");
    p += ")R";  // EMPTY_TUPLE, REDUCE
  };
  caffe2::serialize::PyTorchStreamWriter zip(path);
  ordered_dict();
  p += "(";  // MARK
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor t = tensors[i].second.contiguous();
    const std::string key = std::to_string(i);
    zip.writeRecord("data/" + key, t.data_ptr(), t.numel() * t.element_size());
    str(tensors[i].first);
    global("torch._utils", "_rebuild_tensor_v2");
    p += "((";  // MARK (args), MARK (persistent id)
    str("storage");
    global("torch", "FloatStorage");
    str(key);
    str("cpu");
    integer(static_cast<int32_t>(t.numel()));
    p += "tQ";  // TUPLE, BINPERSID
    integer(0);
    p += "(";
    for (int64_t s : t.sizes()) integer(static_cast<int32_t>(s));
    p += "t(";
    for (int64_t s : t.strides()) integer(static_cast<int32_t>(s));
    p += "t\x89";    // TUPLE, NEWFALSE (requires_grad)
    ordered_dict();  // backward hooks
    p += "tR";       // TUPLE, REDUCE
  }
  p += "u";  // SETITEMS
  p += "}";  // EMPTY_DICT: the state {"_metadata": OrderedDict()}
  str("_metadata");
  ordered_dict();
  p += "sb.";  // SETITEM, BUILD, STOP
  zip.writeRecord("data.pkl", p.data(), p.size());
  zip.writeEndOfFile();
}

inline std::string MakeTempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + name + "_XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << dir;
  return dir;
}

}  // namespace stylesweep::engine_testing

#endif  // STYLESWEEP_TESTS_AGENT_ENGINE_WEIGHTS_FIXTURES_H_
