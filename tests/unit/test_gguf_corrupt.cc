// Every kind of malformed GGUF the reader must reject, each with a one-line
// message that names the file and the problem; then a deterministic mutation
// loop over a small valid file that must never crash (run it under ASan).
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"
#include "tests/unit/test_gguf_bytes.h"

namespace rocmforge::gguf {
namespace {

using testing::GgufBytes;

constexpr uint32_t kF32 = 0, kQ4_0 = 2;

// Parses `bytes` and expects a failure whose message is one line, starts with
// the file label and contains `problem`.
void ExpectRejected(const std::string& bytes, const std::string& problem) {
  auto f = GgufFile::FromBytes(bytes, "bad.gguf");
  ASSERT_FALSE(f.ok()) << "accepted a file that should fail with: " << problem;
  const std::string msg(f.status().message());
  EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(problem), std::string::npos) << "message: " << msg << "\nexpected to contain: " << problem;
}

// A valid file: 2 keys, one F32 tensor {32, 2} at offset 0.
GgufBytes ValidPrefix(uint64_t n_tensors = 1) {
  GgufBytes b;
  b.Header(3, n_tensors, 2).KeyStr("general.architecture", "llama").KeyU32("llama.block_count", 2);
  return b;
}
std::string ValidFile() {
  GgufBytes b = ValidPrefix();
  b.TensorInfo("w", {32, 2}, kF32, 0).PadTo(32).Zeros(32 * 2 * 4);
  return b.str();
}
// One tensor with the given info, data sized generously.
std::string WithTensor(const std::vector<int64_t>& dims, uint32_t type, uint64_t offset = 0) {
  GgufBytes b = ValidPrefix();
  b.TensorInfo("w", dims, type, offset).PadTo(32).Zeros(1024);
  return b.str();
}

TEST(GgufCorrupt, ValidBaseIsAccepted) {
  auto f = GgufFile::FromBytes(ValidFile(), "good.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 1u);
  EXPECT_EQ((*f)->tensors()[0].nbytes, 256u);
  // Version 2 has the same layout and is accepted too.
  std::string v2 = ValidFile();
  v2[4] = 2;
  EXPECT_TRUE(GgufFile::FromBytes(v2).ok());
}

TEST(GgufCorrupt, BadMagicAndVersion) {
  std::string s = ValidFile();
  s[0] = 'X';
  ExpectRejected(s, "bad magic");
  ExpectRejected("GGU", "too short");
  ExpectRejected("", "too short");
  s = ValidFile();
  s[4] = 1;
  ExpectRejected(s, "version 1 is not supported");
  s[4] = 4;
  ExpectRejected(s, "unsupported GGUF version 4");
}

TEST(GgufCorrupt, TruncatedAnywhere) {
  const std::string full = ValidFile();
  ExpectRejected(full.substr(0, 6), "truncated while reading the GGUF version");
  ExpectRejected(full.substr(0, 12), "truncated while reading the tensor count");
  ExpectRejected(full.substr(0, 20), "truncated while reading the metadata key count");
  // Inside the first key's length, its bytes, the value type, the value.
  ExpectRejected(full.substr(0, 28), "truncated while reading the length of metadata key 1 of 2");
  ExpectRejected(full.substr(0, 40), "string length 20 of metadata key 1 of 2 runs past the end");
  ExpectRejected(full.substr(0, 24 + 8 + 20 + 2), "truncated while reading the value type of metadata key 1 of 2");
  ExpectRejected(full.substr(0, 24 + 8 + 20 + 4 + 3), "truncated while reading the length of metadata key 1 of 2");
  // Second key's uint32 value cut short.
  const size_t key2 = 24 + 8 + 20 + 4 + 8 + 5;
  ExpectRejected(full.substr(0, key2 + 8 + 17 + 4 + 2), "truncated while reading metadata key 2 of 2 ('llama.block_count')");
  // Tensor info: name, dims, type, offset.
  const size_t info = key2 + 8 + 17 + 4 + 4;
  ExpectRejected(full.substr(0, info + 4), "truncated while reading the length of the name of tensor info 1 of 1");
  ExpectRejected(full.substr(0, info + 9 + 2), "truncated while reading the dimension count of tensor info 1 of 1 ('w')");
  ExpectRejected(full.substr(0, info + 9 + 4 + 12), "truncated while reading the dimensions of tensor info 1 of 1");
  ExpectRejected(full.substr(0, info + 9 + 4 + 16 + 1), "truncated while reading the type of tensor info 1 of 1");
  ExpectRejected(full.substr(0, info + 9 + 4 + 16 + 4 + 7), "truncated while reading the data offset of tensor info 1");
  // Data section cut short by one byte, or missing entirely.
  ExpectRejected(full.substr(0, full.size() - 1), "tensor 'w' data (offset 0, 256 bytes) runs past the end of the file");
  ExpectRejected(full.substr(0, info + 9 + 4 + 16 + 4 + 8), "runs past the end of the file");
}

TEST(GgufCorrupt, LengthsAndCountsBeyondTheFile) {
  GgufBytes b;
  b.Header(3, 0, 1).Put<uint64_t>(1ull << 40).Raw("key");
  ExpectRejected(b.str(), "string length 1099511627776 of metadata key 1 of 1 runs past the end of the file");

  GgufBytes huge_kv;
  huge_kv.Header(3, 0, 1ull << 60).Zeros(64);
  ExpectRejected(huge_kv.str(), "metadata key count 1152921504606846976 is absurd");
  GgufBytes huge_t;
  huge_t.Header(3, ~0ull, 0).Zeros(64);
  ExpectRejected(huge_t.str(), "tensor count 18446744073709551615 is absurd");

  // An array claiming more elements than the rest of the file could hold: must
  // be rejected before anything is allocated.
  GgufBytes arr;
  arr.Header(3, 0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(1ull << 61).Zeros(16);
  ExpectRejected(arr.str(), "array count 2305843009213693952 of metadata key 1 of 1 ('a') exceeds");
  GgufBytes strs;
  strs.Header(3, 0, 1).Str("s").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(3).Str("x").Put<uint64_t>(100);
  ExpectRejected(strs.str(), "exceeds");  // 3 strings need >= 24 bytes, 17 left
  GgufBytes strs2;
  strs2.Header(3, 0, 1).Str("s").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(2).Str("x").Put<uint64_t>(100).Zeros(8);
  ExpectRejected(strs2.str(), "string element 1 of metadata key 1 of 1 ('s') is truncated or runs past the end");
}

TEST(GgufCorrupt, TypesAndNesting) {
  GgufBytes unknown;
  unknown.Header(3, 0, 1).Str("k").Put<uint32_t>(13).Zeros(8);
  ExpectRejected(unknown.str(), "unknown value type 13 of metadata key 1 of 1 ('k')");
  GgufBytes unknown_elem;
  unknown_elem.Header(3, 0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(99).Put<uint64_t>(1).Zeros(8);
  ExpectRejected(unknown_elem.str(), "unknown array element type 99");
  GgufBytes bad_bool;
  bad_bool.Header(3, 0, 1).Str("b").Put<uint32_t>(7).Put<uint8_t>(2);
  ExpectRejected(bad_bool.str(), "bool value 2 of metadata key 1 of 1 ('b') is neither 0 nor 1");

  // Arrays nested five deep (limit 4).
  GgufBytes nested;
  nested.Header(3, 0, 1).Str("n").Put<uint32_t>(9);
  for (int d = 0; d < 5; ++d) nested.Put<uint32_t>(9).Put<uint64_t>(1);
  nested.Put<uint32_t>(4).Put<uint64_t>(0).Zeros(64);
  ExpectRejected(nested.str(), "nested arrays deeper than 4 levels");
  // Four deep is fine.
  GgufBytes ok;
  ok.Header(3, 0, 1).Str("n").Put<uint32_t>(9);
  for (int d = 0; d < 3; ++d) ok.Put<uint32_t>(9).Put<uint64_t>(1);
  ok.Put<uint32_t>(4).Put<uint64_t>(1).Put<uint32_t>(77);
  auto f = GgufFile::FromBytes(ok.str());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->Find("n")->arr[0].arr[0].arr[0].arr[0].u, 77u);

  ExpectRejected(WithTensor({32, 2}, 99), "tensor info 1 of 1 ('w') has unknown tensor type 99");
  ExpectRejected(WithTensor({32, 2}, 4), "unknown tensor type 4");  // removed Q4_2
  ExpectRejected(WithTensor({256}, 16), "has tensor type IQ2_XXS, which rocmforge does not support");
  ExpectRejected(WithTensor({8}, 26), "has tensor type I32, which rocmforge does not support");
}

TEST(GgufCorrupt, BadDimensions) {
  ExpectRejected(WithTensor({1, 1, 1, 1, 1}, kF32), "has 5 dimensions (at most 4 allowed)");
  ExpectRejected(WithTensor({32, 0}, kF32), "has dimension 1 = 0 (must be > 0)");
  ExpectRejected(WithTensor({-32, 2}, kF32), "has dimension 0 = -32 (must be > 0)");
  ExpectRejected(WithTensor({1ll << 32, 1ll << 32}, kF32), "element count of tensor info 1 of 1 ('w') overflows");
  ExpectRejected(WithTensor({1ll << 31, 1ll << 31}, kF32), "byte size of tensor info 1 of 1 ('w') overflows");
  ExpectRejected(WithTensor({48, 2}, kQ4_0), "has 48 columns, not a multiple of the Q4_0 block size 32");
  ExpectRejected(WithTensor({1ll << 40, 1 << 20}, kF32), "runs past the end of the file");
}

TEST(GgufCorrupt, Duplicates) {
  GgufBytes keys;
  keys.Header(3, 0, 2).KeyU32("a.b", 1).KeyU32("a.b", 2);
  ExpectRejected(keys.str(), "duplicate metadata key in metadata key 2 of 2 ('a.b')");
  GgufBytes tensors = ValidPrefix(2);
  tensors.TensorInfo("w", {8}, kF32, 0).TensorInfo("w", {8}, kF32, 32).PadTo(32).Zeros(64);
  ExpectRejected(tensors.str(), "duplicate tensor name in tensor info 2 of 2 ('w')");
}

TEST(GgufCorrupt, NamesFromTheFileAreEscapedInMessages) {
  GgufBytes keys;
  keys.Header(3, 0, 2).KeyU32("evil\nkey", 1).KeyU32("evil\nkey", 2);
  ExpectRejected(keys.str(), "duplicate metadata key in metadata key 2 of 2 ('evil\\x0akey')");
  GgufBytes names = ValidPrefix(1);
  names.TensorInfo(std::string(200, 'n') + "\r", {8}, 99, 0);
  ExpectRejected(names.str(), "('" + std::string(80, 'n') + "... (201 bytes)') has unknown tensor type 99");
}

TEST(GgufCorrupt, AlignmentAndOffsets) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    GgufBytes b;
    b.Header(3, 0, 1).KeyU32("general.alignment", bad);
    ExpectRejected(b.str(), "general.alignment " + std::to_string(bad) + " is not a power of two");
  }
  GgufBytes s;
  s.Header(3, 0, 1).KeyStr("general.alignment", "32");
  ExpectRejected(s.str(), "general.alignment must be an integer, found string");

  ExpectRejected(WithTensor({8}, kF32, 16), "tensor 'w' data offset 16 is not a multiple of the alignment 32");
  ExpectRejected(WithTensor({8}, kF32, 1ull << 62), "runs past the end of the file");
  ExpectRejected(WithTensor({8}, kF32, ~0ull - 31), "runs past the end of the file");  // offset + size wraps

  // A non-default alignment moves the data section and the offset rule.
  GgufBytes a;
  a.Header(3, 1, 1).KeyU32("general.alignment", 64).TensorInfo("w", {8}, kF32, 32).PadTo(64).Zeros(128);
  ExpectRejected(a.str(), "not a multiple of the alignment 64");
  GgufBytes good;
  good.Header(3, 1, 1).KeyU32("general.alignment", 64).TensorInfo("w", {8}, kF32, 64).PadTo(64).Zeros(128);
  auto f = GgufFile::FromBytes(good.str());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->alignment(), 64u);
}

// A small valid file with every value type and several tensor types, made by
// the writer; the mutation loop corrupts copies of it.
std::string MutationSeed() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 2);
  w.SetF32("llama.rope.freq_base", 10000.0f);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2});
  w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  Value nested;
  nested.type = ValueType::ARRAY;
  nested.elem_type = ValueType::ARRAY;
  Value inner;
  inner.type = ValueType::ARRAY;
  inner.elem_type = ValueType::UINT16;
  inner.arr.resize(3);
  for (Value& v : inner.arr) v.type = ValueType::UINT16;
  nested.arr = {inner, inner};
  w.Set("test.nested", nested);
  EXPECT_TRUE(w.AddTensorBytes("a", GgmlType::F32, {4, 2}, std::string(32, '\1')).ok());
  EXPECT_TRUE(w.AddTensorBytes("b", GgmlType::Q4_0, {32}, std::string(18, '\2')).ok());
  EXPECT_TRUE(w.AddTensorBytes("c", GgmlType::Q4_K, {256}, std::string(144, '\3')).ok());
  const std::string path = std::string(ROCMFORGE_BINARY_DIR) + "/test_gguf_corrupt_seed.gguf";
  EXPECT_TRUE(w.Write(path).ok());
  std::string bytes;
  std::FILE* in = std::fopen(path.c_str(), "rb");
  EXPECT_NE(in, nullptr);
  if (in == nullptr) return bytes;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), in)) > 0;) bytes.append(buf, n);
  std::fclose(in);
  std::remove(path.c_str());
  return bytes;
}

// Touches everything a successfully parsed file exposes.
uint64_t Walk(const GgufFile& g) {
  uint64_t h = g.version() + g.alignment();
  for (const KeyValue& kv : g.metadata()) {
    h += kv.key.size() + static_cast<uint64_t>(kv.value.AsInt()) + kv.value.arr.size() + kv.value.str.size();
    (void)g.GetInt(kv.key);
    (void)g.GetFloat(kv.key);
    (void)g.GetString(kv.key);
    (void)g.GetStringArray(kv.key);
    (void)g.GetFloatArray(kv.key);
    (void)g.GetIntArray(kv.key);
    (void)g.GetBoolOr(kv.key, false);
  }
  for (const TensorInfo& t : g.tensors()) {
    for (size_t k = 0; k < t.nbytes; ++k) h += t.data[k];
    h += static_cast<uint64_t>(t.rows() + t.cols());
  }
  return h;
}

TEST(GgufCorrupt, RandomMutationsNeverCrash) {
  const std::string seed = MutationSeed();
  ASSERT_TRUE(GgufFile::FromBytes(seed).ok());
  std::mt19937_64 rng(12345);
  int accepted = 0, rejected = 0;
  uint64_t sink = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string s = seed;
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {  // flip a few random bytes
      for (uint64_t k = 0, n = 1 + rng() % 4; k < n; ++k) s[rng() % s.size()] ^= static_cast<char>(1 + rng() % 255);
    } else if (kind == 1) {  // truncate
      s.resize(rng() % s.size());
    } else if (kind == 2) {  // overwrite 8 bytes with an extreme value
      const uint64_t extremes[] = {0, ~0ull, 1ull << 63, 0x7fffffffffffffffull, 0xffffffffull, 5};
      const uint64_t v = extremes[rng() % 6];
      const size_t at = rng() % (s.size() - 8);
      std::memcpy(s.data() + at, &v, 8);
    } else {  // set a byte in the header region to a small value (types, counts)
      s[rng() % std::min<size_t>(s.size(), 600)] = static_cast<char>(rng() % 16);
    }
    auto f = GgufFile::FromBytes(s, "mutant.gguf");
    if (f.ok()) {
      ++accepted;
      sink += Walk(**f);
    } else {
      ++rejected;
      const std::string msg(f.status().message());
      ASSERT_EQ(msg.rfind("mutant.gguf: ", 0), 0u) << msg;
      ASSERT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(accepted, 10);  // some mutations only touch data or values
  std::printf("mutations: %d accepted, %d rejected (walk hash %llu)\n", accepted, rejected,
              static_cast<unsigned long long>(sink));
}

}  // namespace
}  // namespace rocmforge::gguf
