// libFuzzer target for the GGUF reader: any byte string either parses or is
// rejected with a one-line message; a file that parses must be safe to walk
// completely (every key through every typed getter, every byte of every
// tensor's data).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/gguf/gguf_file.h"

namespace {

using rocmforge::gguf::GgufFile;

[[noreturn]] void Die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_gguf: %s: %s\n", what, detail.c_str());
  std::abort();
}

uint64_t Walk(const GgufFile& g) {
  uint64_t h = g.version() + g.alignment();
  for (const auto& kv : g.metadata()) {
    const auto& v = kv.value;
    h += kv.key.size() + static_cast<uint64_t>(v.AsInt()) + static_cast<uint64_t>(v.AsDouble() != 0) +
         v.str.size() + v.arr.size();
    if (g.Find(kv.key) != &v) Die("Find does not return the stored value of", kv.key);
    h += g.GetInt(kv.key).ok() + g.GetFloat(kv.key).ok() + g.GetBool(kv.key).ok() + g.GetString(kv.key).ok();
    if (auto a = g.GetStringArray(kv.key); a.ok()) h += a->size();
    if (auto a = g.GetFloatArray(kv.key); a.ok()) h += a->size();
    if (auto a = g.GetIntArray(kv.key); a.ok()) h += a->size();
  }
  for (const auto& t : g.tensors()) {
    if (g.FindTensor(t.name) != &t) Die("FindTensor does not return the stored tensor", t.name);
    if (t.cols() <= 0 || t.rows() <= 0) Die("non-positive shape for", t.name);
    // ASan catches any byte outside the buffer.
    for (size_t k = 0; k < t.nbytes; ++k) h += t.data[k];
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = GgufFile::FromBytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
  if (!file.ok()) {
    const std::string msg(file.status().message());
    if (msg.rfind("fuzz.gguf: ", 0) != 0 || msg.find('\n') != std::string::npos) {
      Die("error message is not one line naming the file", msg);
    }
    return 0;
  }
  volatile uint64_t sink = Walk(**file);
  (void)sink;
  return 0;
}
