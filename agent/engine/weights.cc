#include "agent/engine/weights.h"

#include <c10/core/Storage.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/types.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

absl::Status WeightsError(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("weights file '", path, "' ", what,
                                                 ". Convert it to a supported file with: ", kConvertWeightsCommand));
}

// --- A minimal reader for the pickle inside torch.save's zip format. ---
//
// LibTorch's own unpickler (torch::pickle_load) turns a collections.OrderedDict
// into None, so it cannot read `torch.save(model.state_dict())`, the most
// common file there is. This reader understands the pickle opcodes torch.save
// emits for containers of tensors (protocol 2, plus the protocol 4 ones a
// `pickle_protocol=4` save adds), and nothing else:
// objects other than dicts, lists, tuples, scalars, strings and tensors are
// refused, so a hostile file can make it fail but not run code. Tensors stay
// references to their zip record until asked for, so the classifier of a
// full VGG19 checkpoint (480 MB) is never read.

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t integer = 0;          // kBool, kInt
  double real = 0;              // kFloat
  std::string text;             // kString; kGlobal "module.name"; kStorage record key
  std::vector<ValuePtr> items;  // kTuple, kList; kDict as key, value, key, value...
  // kStorage: element type and count. kTensor: its storage and view.
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t numel = 0;
  ValuePtr storage;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

ValuePtr Make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

std::optional<c10::ScalarType> StorageDtype(const std::string& global) {
  static const auto* types = new std::map<std::string, c10::ScalarType>{
      {"torch.FloatStorage", c10::ScalarType::Float},  {"torch.DoubleStorage", c10::ScalarType::Double},
      {"torch.HalfStorage", c10::ScalarType::Half},    {"torch.BFloat16Storage", c10::ScalarType::BFloat16},
      {"torch.LongStorage", c10::ScalarType::Long},    {"torch.IntStorage", c10::ScalarType::Int},
      {"torch.ShortStorage", c10::ScalarType::Short},  {"torch.CharStorage", c10::ScalarType::Char},
      {"torch.ByteStorage", c10::ScalarType::Byte},    {"torch.BoolStorage", c10::ScalarType::Bool},
      {"torch.UntypedStorage", c10::ScalarType::Byte},
  };
  auto it = types->find(global);
  if (it == types->end()) return std::nullopt;
  return it->second;
}

// Runs the pickle program in `data` and returns its result. Throws
// c10::Error (via TORCH_CHECK) on anything malformed or unsupported; the
// caller turns that into a status naming the file. Opcode names in comments
// are those of Python's pickletools.
class Unpickler {
 public:
  explicit Unpickler(std::string_view data) : data_(data) {}

  ValuePtr Run() {
    while (true) {
      TORCH_CHECK(pos_ < data_.size(), "pickle ends without STOP");
      at_ = pos_;
      const uint8_t op = Read<uint8_t>();
      if (op == '.') break;  // STOP
      Execute(op);
    }
    TORCH_CHECK(stack_.size() == 1, "pickle leaves ", stack_.size(), " values instead of one");
    return stack_.back();
  }

 private:
  using K = Value::Kind;

  void Execute(uint8_t op) {
    // clang-format off
    switch (op) {
      case 0x80: Read<uint8_t>(); break;                             // PROTO
      case 0x95: Read<uint64_t>(); break;                            // FRAME
      case '(':  marks_.push_back(stack_.size()); break;             // MARK
      case '0':  PopN(1); break;                                     // POP
      case '1':  PopToMark(); break;                                 // POP_MARK
      case 'N':  Push(Make(K::kNone)); break;                        // NONE
      case 0x88: Push(Int(K::kBool, 1)); break;                      // NEWTRUE
      case 0x89: Push(Int(K::kBool, 0)); break;                      // NEWFALSE
      case 'K':  Push(Int(K::kInt, Read<uint8_t>())); break;         // BININT1
      case 'M':  Push(Int(K::kInt, Read<uint16_t>())); break;        // BININT2
      case 'J':  Push(Int(K::kInt, Read<int32_t>())); break;         // BININT
      case 0x8a: Push(Int(K::kInt, ReadLong1())); break;             // LONG1
      case 'G':  Push(ReadBinFloat()); break;                        // BINFLOAT
      case 'X':  Push(String(ReadBytes(Read<uint32_t>()))); break;   // BINUNICODE
      case 0x8c: Push(String(ReadBytes(Read<uint8_t>()))); break;    // SHORT_BINUNICODE
      case 0x8d: Push(String(ReadBytes(Read<uint64_t>()))); break;   // BINUNICODE8
      case ')':  Push(Sequence(K::kTuple, {})); break;               // EMPTY_TUPLE
      case 't':  Push(Sequence(K::kTuple, PopToMark())); break;      // TUPLE
      case 0x85: Push(Sequence(K::kTuple, PopN(1))); break;          // TUPLE1
      case 0x86: Push(Sequence(K::kTuple, PopN(2))); break;          // TUPLE2
      case 0x87: Push(Sequence(K::kTuple, PopN(3))); break;          // TUPLE3
      case ']':  Push(Sequence(K::kList, {})); break;                // EMPTY_LIST
      case 'l':  Push(Sequence(K::kList, PopToMark())); break;       // LIST
      case 'a':  Extend(K::kList, PopN(1)); break;                   // APPEND
      case 'e':  Extend(K::kList, PopToMark()); break;               // APPENDS
      case '}':  Push(Make(K::kDict)); break;                        // EMPTY_DICT
      case 'd':  Push(Sequence(K::kDict, PopToMark())); CheckPairs(Top()); break;  // DICT
      case 's':  Extend(K::kDict, PopN(2)); break;                   // SETITEM
      case 'u':  Extend(K::kDict, PopToMark()); break;               // SETITEMS
      case 'q':  Memoize(Read<uint8_t>()); break;                    // BINPUT
      case 'r':  Memoize(Read<uint32_t>()); break;                   // LONG_BINPUT
      case 0x94: Memoize(memo_.size()); break;                       // MEMOIZE
      case 'h':  Push(Recall(Read<uint8_t>())); break;               // BINGET
      case 'j':  Push(Recall(Read<uint32_t>())); break;              // LONG_BINGET
      case 'c':  Push(ReadGlobal()); break;                          // GLOBAL
      case 0x93: Push(StackGlobal(PopN(2))); break;                  // STACK_GLOBAL
      case 'R':                                                      // REDUCE
      case 0x81: Push(Call(PopN(2))); break;                         // NEWOBJ
      case 'b':  PopN(1); Top(); break;  // BUILD: the state (an OrderedDict's _metadata) is not needed
      case 'Q':  Push(PersistentLoad(PopN(1)[0])); break;            // BINPERSID
      default:   Fail("unsupported opcode 0x", absl::StrCat(absl::Hex(op)));
    }
    // clang-format on
  }

  template <typename... Args>
  [[noreturn]] void Fail(const Args&... what) const {
    TORCH_CHECK(false, "pickle byte ", at_, ": ", what...);
  }

  void Check(bool condition, const char* what) const {
    if (!condition) Fail(what);
  }

  template <typename T>
  T Read() {  // little-endian, as pickle's binary integers are
    Check(data_.size() - pos_ >= sizeof(T), "truncated");
    T value;
    std::memcpy(&value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string ReadBytes(uint64_t n) {
    Check(data_.size() - pos_ >= n, "truncated");
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  std::string ReadLine() {
    const size_t end = data_.find('\n', pos_);
    Check(end != std::string_view::npos, "truncated");
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  // A little-endian two's-complement integer of up to 8 bytes.
  int64_t ReadLong1() {
    const uint8_t n = Read<uint8_t>();
    Check(n <= 8, "integer wider than 64 bits");
    uint64_t bits = 0;
    for (uint8_t i = 0; i < n; ++i) bits |= uint64_t{Read<uint8_t>()} << (8 * i);
    if (n > 0 && n < 8 && ((bits >> (8 * n - 1)) & 1)) bits |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(bits);
  }

  ValuePtr ReadBinFloat() {  // big-endian IEEE double
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | Read<uint8_t>();
    ValuePtr v = Make(K::kFloat);
    std::memcpy(&v->real, &bits, sizeof(bits));
    return v;
  }

  ValuePtr ReadGlobal() {
    const std::string module = ReadLine();
    return Global(module, ReadLine());
  }

  ValuePtr StackGlobal(const std::vector<ValuePtr>& module_and_name) {
    Check(module_and_name[0]->kind == K::kString && module_and_name[1]->kind == K::kString, "malformed STACK_GLOBAL");
    return Global(module_and_name[0]->text, module_and_name[1]->text);
  }

  static ValuePtr Global(const std::string& module, const std::string& name) {
    ValuePtr v = Make(K::kGlobal);
    v->text = absl::StrCat(module, ".", name);
    return v;
  }

  static ValuePtr Int(K kind, int64_t integer) {
    ValuePtr v = Make(kind);
    v->integer = integer;
    return v;
  }

  static ValuePtr String(std::string s) {
    ValuePtr v = Make(K::kString);
    v->text = std::move(s);
    return v;
  }

  static ValuePtr Sequence(K kind, std::vector<ValuePtr> items) {
    ValuePtr v = Make(kind);
    v->items = std::move(items);
    return v;
  }

  void Push(ValuePtr v) { stack_.push_back(std::move(v)); }

  ValuePtr& Top() {
    Check(!stack_.empty(), "stack underflow");
    return stack_.back();
  }

  // Removes the top `n` values and returns them bottom first.
  std::vector<ValuePtr> PopN(size_t n) {
    Check(stack_.size() >= n && (marks_.empty() || stack_.size() - n >= marks_.back()), "stack underflow");
    std::vector<ValuePtr> items(stack_.end() - n, stack_.end());
    stack_.resize(stack_.size() - n);
    return items;
  }

  // Removes and returns everything above the last MARK.
  std::vector<ValuePtr> PopToMark() {
    Check(!marks_.empty(), "no MARK");
    std::vector<ValuePtr> items(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }

  void CheckPairs(const ValuePtr& dict) const { Check(dict->items.size() % 2 == 0, "odd number of dict items"); }

  // Appends list items, or key-value pairs to a dict, to the top value.
  void Extend(K kind, const std::vector<ValuePtr>& items) {
    ValuePtr& target = Top();
    Check(target->kind == kind, kind == K::kList ? "APPEND to a non-list" : "SETITEM on a non-dict");
    target->items.insert(target->items.end(), items.begin(), items.end());
    if (kind == K::kDict) CheckPairs(target);
  }

  void Memoize(uint64_t index) { memo_[index] = Top(); }

  ValuePtr Recall(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) Fail("unknown memo ", index);
    return it->second;
  }

  int64_t AsInt(const ValuePtr& v) const {
    Check(v->kind == K::kInt, "expected an integer in a tensor description");
    return v->integer;
  }

  std::vector<int64_t> AsInts(const ValuePtr& v) const {
    Check(v->kind == K::kTuple, "expected a tuple of integers in a tensor description");
    std::vector<int64_t> out;
    for (const ValuePtr& item : v->items) out.push_back(AsInt(item));
    return out;
  }

  // The few callables torch.save's pickles use; anything else is refused.
  ValuePtr Call(const std::vector<ValuePtr>& callable_and_args) {
    const ValuePtr& callable = callable_and_args[0];
    Check(callable->kind == K::kGlobal, "call of a non-callable");
    Check(callable_and_args[1]->kind == K::kTuple, "call without an argument tuple");
    const std::string& name = callable->text;
    const std::vector<ValuePtr>& args = callable_and_args[1]->items;
    if (name == "collections.OrderedDict") {
      Check(args.empty(), "OrderedDict with constructor arguments");
      return Make(K::kDict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      Check(args.size() >= 4 && args[0]->kind == K::kStorage, "malformed tensor");
      ValuePtr t = Make(K::kTensor);
      t->storage = args[0];
      t->offset = AsInt(args[1]);
      t->sizes = AsInts(args[2]);
      t->strides = AsInts(args[3]);
      Check(t->sizes.size() == t->strides.size(), "tensor sizes and strides differ in length");
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag") {
      Check(!args.empty(), "malformed parameter or type tag");
      return args[0];  // the tensor / the container; the other arguments do not matter here
    }
    Fail("unsupported object '", name, "'");
  }

  // ('storage', storage type, key, location, numel) -> a reference to record data/<key>.
  ValuePtr PersistentLoad(const ValuePtr& pid) {
    Check(pid->kind == K::kTuple && pid->items.size() >= 5 && pid->items[0]->kind == K::kString &&
              pid->items[0]->text == "storage" && pid->items[1]->kind == K::kGlobal &&
              pid->items[2]->kind == K::kString,
          "unsupported persistent id");
    std::optional<c10::ScalarType> dtype = StorageDtype(pid->items[1]->text);
    if (!dtype) Fail("unsupported storage type ", pid->items[1]->text);
    ValuePtr storage = Make(K::kStorage);
    storage->dtype = *dtype;
    storage->text = pid->items[2]->text;
    storage->numel = AsInt(pid->items[4]);
    return storage;
  }

  std::string_view data_;
  size_t pos_ = 0;
  size_t at_ = 0;  // offset of the instruction being executed, for messages
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

// Reads the tensor a kTensor value describes from its zip record, as a
// contiguous float tensor that owns its memory.
torch::Tensor Materialise(caffe2::serialize::PyTorchStreamReader& zip, const Value& t) {
  const Value& s = *t.storage;
  auto [data, bytes] = zip.getRecord(absl::StrCat("data/", s.text));
  const size_t element = c10::elementSize(s.dtype);
  TORCH_CHECK(s.numel >= 0 && static_cast<size_t>(s.numel) <= bytes / element, "record data/", s.text,
              " is shorter than its storage");
  // The view's last element must lie inside the storage; the file is not
  // trusted, so the arithmetic is checked.
  int64_t last = t.offset;
  bool empty = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    TORCH_CHECK(t.sizes[d] >= 0 && t.strides[d] >= 0, "negative tensor size or stride");
    int64_t span = 0;
    if (t.sizes[d] == 0) empty = true;
    TORCH_CHECK(t.sizes[d] == 0 || (!__builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &span) &&
                                    !__builtin_add_overflow(last, span, &last)),
                "tensor view of data/", s.text, " is too large");
  }
  TORCH_CHECK(t.offset >= 0 && (empty || last < s.numel), "tensor view exceeds its storage data/", s.text);
  c10::Storage storage(c10::Storage::use_byte_size_t(), bytes, std::move(data), /*allocator=*/nullptr,
                       /*resizable=*/false);
  torch::Tensor view = torch::empty({0}, torch::TensorOptions().dtype(s.dtype));
  view.set_(storage, t.offset, t.sizes, t.strides);
  return view.to(torch::kFloat).clone(at::MemoryFormat::Contiguous);
}

// Name -> tensor, from whichever file format; tensors are read when wanted.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::vector<std::string> Keys() const = 0;
  // An undefined tensor when `key` is absent.
  virtual torch::Tensor Get(const std::string& key) = 0;
};

class PickleSource : public TensorSource {
 public:
  explicit PickleSource(std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip) : zip_(std::move(zip)) {
    auto [data, size] = zip_->getRecord("data.pkl");
    root_ = Unpickler(std::string_view(static_cast<const char*>(data.get()), size)).Run();
    TORCH_CHECK(root_->kind == Value::Kind::kDict, "holds a pickled ", KindName(root_->kind),
                ", not a dict of tensors");
    for (size_t i = 0; i + 1 < root_->items.size(); i += 2) {
      const ValuePtr& key = root_->items[i];
      if (key->kind == Value::Kind::kString) entries_[key->text] = root_->items[i + 1];
    }
  }

  std::vector<std::string> Keys() const override {
    std::vector<std::string> keys;
    for (const auto& [key, value] : entries_) keys.push_back(key);
    return keys;
  }

  torch::Tensor Get(const std::string& key) override {
    auto it = entries_.find(key);
    if (it == entries_.end()) return {};
    TORCH_CHECK(it->second->kind == Value::Kind::kTensor, "'", key, "' is a ", KindName(it->second->kind),
                ", not a tensor");
    return Materialise(*zip_, *it->second);
  }

 private:
  static const char* KindName(Value::Kind kind) {
    switch (kind) {
      case Value::Kind::kTuple:
        return "tuple";
      case Value::Kind::kList:
        return "list";
      case Value::Kind::kDict:
        return "dict";
      case Value::Kind::kTensor:
        return "tensor";
      default:
        return "scalar";
    }
  }

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip_;
  ValuePtr root_;
  std::map<std::string, ValuePtr> entries_;
};

class ScriptSource : public TensorSource {
 public:
  explicit ScriptSource(const std::string& path) {
    torch::jit::Module module = torch::jit::load(path, torch::kCPU);
    for (const auto& p : module.named_parameters(/*recurse=*/true)) tensors_[p.name] = p.value;
  }

  std::vector<std::string> Keys() const override {
    std::vector<std::string> keys;
    for (const auto& [key, value] : tensors_) keys.push_back(key);
    return keys;
  }

  torch::Tensor Get(const std::string& key) override {
    auto it = tensors_.find(key);
    return it == tensors_.end() ? torch::Tensor() : it->second.to(torch::kFloat);
  }

 private:
  std::map<std::string, torch::Tensor> tensors_;
};

// The first bytes of a legacy (pre-1.6) torch.save file: pickle protocol 2
// followed by torch's magic number 0x1950a86a20f9469cfc6c as a LONG1.
constexpr std::string_view kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
constexpr std::string_view kZipMagic("PK\x03\x04", 4);

// Opens `path` as the format its first bytes and records announce.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenSource(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open weights file '", path, "'"));
  std::string head(kLegacyMagic.size(), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.empty()) return WeightsError(path, "is empty");
  if (head == kLegacyMagic) {
    return WeightsError(path, "is in PyTorch's legacy (pre-1.6) serialization format, which LibTorch cannot read");
  }
  if (head.compare(0, kZipMagic.size(), kZipMagic) != 0) {
    return WeightsError(path, "is not a PyTorch weights file (neither a zip-format torch.save nor TorchScript)");
  }
  try {
    auto zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    if (zip->hasRecord("constants.pkl")) return std::make_unique<ScriptSource>(path);
    if (zip->hasRecord("data.pkl")) return std::make_unique<PickleSource>(std::move(zip));
    return WeightsError(path, "is a zip file without data.pkl, so not something torch.save wrote");
  } catch (const c10::Error& e) {
    return WeightsError(path, absl::StrCat("cannot be read: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // TorchScript's own errors are not c10::Errors
    return WeightsError(path, absl::StrCat("cannot be read: ", e.what()));
  }
}

std::string Shape(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

}  // namespace

absl::StatusOr<Vgg19Features> LoadVgg19(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("weights file '", path, "' does not exist"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("weights file '", path, "' is a directory"));
  }
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenSource(path);
  if (!source.ok()) return source.status();
  const std::vector<std::string>& names = AllLayerNames();
  try {
    // Convolution i is present when either key form is; the first absent one
    // ends the network, and nothing may follow it.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> convs;
    std::optional<size_t> first_missing;
    for (size_t i = 0; i < kVgg19ConvIndices.size(); ++i) {
      const std::string n = std::to_string(kVgg19ConvIndices[i]);
      std::string weight_key = absl::StrCat("features.", n, ".weight");
      torch::Tensor weight = (*source)->Get(weight_key);
      if (!weight.defined()) weight = (*source)->Get(weight_key = absl::StrCat(n, ".weight"));
      const std::string bias_key = weight_key.substr(0, weight_key.size() - 6) + "bias";
      torch::Tensor bias = (*source)->Get(bias_key);
      if (!weight.defined() && !bias.defined()) {
        if (!first_missing) first_missing = i;
        continue;
      }
      if (first_missing) {
        return WeightsError(
            path, absl::StrCat("has ", names[i], " (features.", n, ") but lacks ", names[*first_missing], " (features.",
                               kVgg19ConvIndices[*first_missing], ") before it"));
      }
      if (!weight.defined() || !bias.defined()) {
        return WeightsError(path, absl::StrCat("has only half of ", names[i], ": '",
                                               weight.defined() ? bias_key : weight_key, "' is missing"));
      }
      const int64_t out = kVgg19ConvChannels[i], in = i == 0 ? 3 : kVgg19ConvChannels[i - 1];
      if (weight.sizes() != torch::IntArrayRef{out, in, 3, 3} || bias.sizes() != torch::IntArrayRef{out}) {
        return WeightsError(
            path, absl::StrCat("has ", names[i], " shaped ", Shape(weight), " + ", Shape(bias), " ('", weight_key,
                               "'); VGG19 needs [", out, ", ", in, ", 3, 3] + [", out, "]"));
      }
      convs.emplace_back(std::move(weight), std::move(bias));
    }
    if (convs.empty()) {
      std::vector<std::string> keys = (*source)->Keys();
      if (keys.size() > 5) keys.resize(5);
      return WeightsError(path, absl::StrCat("holds no VGG19 convolutions (expected keys like 'features.0.weight'; "
                                             "found '",
                                             absl::StrJoin(keys, "', '"), "'...)"));
    }
    Vgg19Features net(static_cast<int>(convs.size()));
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < convs.size(); ++i) {
      net->conv(static_cast<int>(i))->weight.copy_(convs[i].first);
      net->conv(static_cast<int>(i))->bias.copy_(convs[i].second);
    }
    return net;
  } catch (const c10::Error& e) {
    return WeightsError(path, absl::StrCat("cannot be read: ", e.what_without_backtrace()));
  }
}

Vgg19Features RandomVgg19(uint64_t seed) {
  Vgg19Features net(static_cast<int>(kVgg19ConvIndices.size()));
  // Marsaglia's polar method on 53-bit uniforms from the fully specified
  // mt19937_64, written out because std::normal_distribution differs between
  // standard libraries and torch's sampler between CPU instruction sets.
  std::mt19937_64 bits(seed);
  auto uniform = [&bits] { return static_cast<double>(bits() >> 11) * 0x1.0p-52 - 1.0; };  // [-1, 1)
  torch::NoGradGuard no_grad;
  for (int i = 0; i < net->num_convs(); ++i) {
    torch::Tensor weight = torch::empty_like(net->conv(i)->weight, at::MemoryFormat::Contiguous);
    const double stddev = std::sqrt(2.0 / static_cast<double>(weight.size(0) * 9));  // fan-out, ReLU gain
    float* w = weight.data_ptr<float>();
    const int64_t n = weight.numel();
    for (int64_t j = 0; j < n; j += 2) {
      double u, v, s;
      do {
        u = uniform();
        v = uniform();
        s = u * u + v * v;
      } while (s >= 1.0 || s == 0.0);
      const double scale = stddev * std::sqrt(-2.0 * std::log(s) / s);
      w[j] = static_cast<float>(u * scale);
      if (j + 1 < n) w[j + 1] = static_cast<float>(v * scale);
    }
    net->conv(i)->weight.copy_(weight);
    net->conv(i)->bias.zero_();
  }
  return net;
}

}  // namespace stylesweep
