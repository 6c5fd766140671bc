// Writer round trips: every metadata type (nested arrays included) and every
// tensor type written by GgufWriter reads back identically through GgufFile.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"

namespace rocmforge::gguf {
namespace {

std::string TempPath(const std::string& name) { return std::string(ROCMFORGE_BINARY_DIR) + "/" + name; }

Value Make(ValueType t) {
  Value v;
  v.type = t;
  return v;
}

// Random value of scalar type t; integers cover the type's full range.
Value RandomScalar(ValueType t, std::mt19937_64& rng) {
  Value v = Make(t);
  const uint64_t r = rng();
  switch (t) {
    case ValueType::UINT8: v.u = r & 0xff; break;
    case ValueType::INT8: v.i = static_cast<int8_t>(r); break;
    case ValueType::UINT16: v.u = r & 0xffff; break;
    case ValueType::INT16: v.i = static_cast<int16_t>(r); break;
    case ValueType::UINT32: v.u = r & 0xffffffffu; break;
    case ValueType::INT32: v.i = static_cast<int32_t>(r); break;
    case ValueType::UINT64: v.u = r; break;
    case ValueType::INT64: v.i = static_cast<int64_t>(r); break;
    case ValueType::FLOAT32: v.f = static_cast<float>(std::normal_distribution<double>(0, 1e3)(rng)); break;
    case ValueType::FLOAT64: v.f = std::normal_distribution<double>(0, 1e30)(rng); break;
    case ValueType::BOOL: v.u = r & 1; break;
    case ValueType::STRING: {
      const size_t n = r % 40;
      for (size_t k = 0; k < n; ++k) v.str.push_back(static_cast<char>(rng() & 0xff));  // any bytes, NULs too
      break;
    }
    default: break;
  }
  return v;
}

void ExpectSame(const Value& a, const Value& b, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(a.type, b.type);
  switch (a.type) {
    case ValueType::ARRAY:
      ASSERT_EQ(a.elem_type, b.elem_type);
      ASSERT_EQ(a.arr.size(), b.arr.size());
      for (size_t k = 0; k < a.arr.size(); ++k) ExpectSame(a.arr[k], b.arr[k], where + "[" + std::to_string(k) + "]");
      break;
    case ValueType::STRING: EXPECT_EQ(a.str, b.str); break;
    case ValueType::FLOAT32: case ValueType::FLOAT64: EXPECT_EQ(a.f, b.f); break;
    default:
      EXPECT_EQ(a.u, b.u);
      EXPECT_EQ(a.i, b.i);
  }
}

const ValueType kScalars[] = {ValueType::UINT8,  ValueType::INT8,   ValueType::UINT16, ValueType::INT16,
                              ValueType::UINT32, ValueType::INT32,  ValueType::FLOAT32, ValueType::BOOL,
                              ValueType::STRING, ValueType::UINT64, ValueType::INT64,  ValueType::FLOAT64};

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  std::mt19937_64 rng(20261125);
  GgufWriter w;
  std::vector<KeyValue> expected;
  auto add = [&](const std::string& key, Value v) {
    w.Set(key, v);
    expected.push_back({key, std::move(v)});
  };
  for (ValueType t : kScalars) {
    add("scalar." + std::string(ValueTypeName(t)), RandomScalar(t, rng));
    Value arr = Make(ValueType::ARRAY);
    arr.elem_type = t;
    const size_t n = 1 + rng() % 37;  // awkward sizes
    for (size_t k = 0; k < n; ++k) arr.arr.push_back(RandomScalar(t, rng));
    add("array." + std::string(ValueTypeName(t)), arr);
  }
  Value empty = Make(ValueType::ARRAY);
  empty.elem_type = ValueType::INT32;
  add("array.empty", empty);
  // Arrays of arrays (of arrays), with inner arrays of different element types.
  Value nested = Make(ValueType::ARRAY);
  nested.elem_type = ValueType::ARRAY;
  for (int k = 0; k < 3; ++k) {
    Value inner = Make(ValueType::ARRAY);
    inner.elem_type = kScalars[k * 4];
    for (int j = 0; j < 5 + k; ++j) inner.arr.push_back(RandomScalar(inner.elem_type, rng));
    nested.arr.push_back(inner);
  }
  Value deeper = Make(ValueType::ARRAY);
  deeper.elem_type = ValueType::ARRAY;
  deeper.arr.push_back(nested);
  add("array.nested", nested);
  add("array.nested2", deeper);

  // The convenience setters, and replacing a value keeps the first position.
  w.SetU32("conv.u32", 4000000000u);
  w.SetI32("conv.i32", -123456);
  w.SetU64("conv.u64", 1ull << 63);
  w.SetF32("conv.f32", 0.15625f);
  w.SetBool("conv.bool", true);
  w.SetString("conv.string", "first");
  w.SetString("conv.string", "h\xC3\xA9llo");
  w.SetStringArray("conv.strings", {"a", "", "\xE2\x96\x81the"});
  w.SetF32Array("conv.f32s", {1.5f, -2.25f});
  w.SetI32Array("conv.i32s", {-1, 0, 2147483647});

  const std::string path = TempPath("test_gguf_writer_meta.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  ASSERT_EQ(g.metadata().size(), expected.size() + 9);  // conv.string set twice; no general.alignment at 32
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(g.metadata()[k].key, expected[k].key);
    ExpectSame(expected[k].value, g.metadata()[k].value, expected[k].key);
  }
  EXPECT_EQ(*g.GetInt("conv.u32"), 4000000000);
  EXPECT_EQ(*g.GetInt("conv.i32"), -123456);
  EXPECT_FALSE(g.GetInt("conv.u64").ok());  // 2^63 does not fit int64: an error, not a wrap
  EXPECT_EQ(g.Find("conv.u64")->u, 1ull << 63);
  EXPECT_EQ(*g.GetFloat("conv.f32"), 0.15625);
  EXPECT_EQ(*g.GetBool("conv.bool"), true);
  EXPECT_EQ(*g.GetString("conv.string"), "h\xC3\xA9llo");
  EXPECT_EQ(g.metadata()[expected.size() + 5].key, "conv.string");
  EXPECT_EQ(*g.GetStringArray("conv.strings"), (std::vector<std::string>{"a", "", "\xE2\x96\x81the"}));
  EXPECT_EQ(*g.GetFloatArray("conv.f32s"), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(*g.GetIntArray("conv.i32s"), (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_EQ(*g.GetFloatArray("conv.i32s"), (std::vector<float>{-1.0f, 0.0f, 2147483647.0f}));
  std::remove(path.c_str());
}

TEST(GgufWriter, EverySupportedTensorTypeRoundTrips) {
  std::mt19937_64 rng(7);
  GgufWriter w;
  struct Written {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::string bytes;
  };
  std::vector<Written> written;
  for (uint32_t raw = 0; raw < static_cast<uint32_t>(GgmlType::kCount); ++raw) {
    const GgmlTypeInfo* info = GetTypeInfo(raw);
    if (!info || !info->supported) continue;
    const GgmlType type = static_cast<GgmlType>(raw);
    // Awkward shapes: 1 to 3 blocks per row, odd row counts, 1-D to 4-D.
    const int64_t cols = info->block_size * static_cast<int64_t>(1 + rng() % 3);
    std::vector<int64_t> dims = {cols};
    for (uint64_t d = 0, nd = rng() % 4; d < nd; ++d) dims.push_back(static_cast<int64_t>(1 + rng() % 5));
    int64_t rows = 1;
    for (size_t d = 1; d < dims.size(); ++d) rows *= dims[d];
    std::string bytes(RowBytes(type, cols) * static_cast<size_t>(rows), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string name = "t." + std::string(info->name);
    ASSERT_TRUE(w.AddTensorBytes(name, type, dims, bytes).ok()) << name;
    written.push_back({name, type, dims, bytes});
  }
  ASSERT_GE(written.size(), 15u);
  // A fill callback that streams its data.
  ASSERT_TRUE(w.AddTensor("t.fill", GgmlType::F32, {3, 7}, [](uint8_t* dst, size_t n) {
                 for (size_t k = 0; k < n; ++k) dst[k] = static_cast<uint8_t>(k * 7);
                 return absl::OkStatus();
               }).ok());

  const std::string path = TempPath("test_gguf_writer_tensors.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ((*f)->tensors().size(), written.size() + 1);
  for (size_t k = 0; k < written.size(); ++k) {
    const TensorInfo& t = (*f)->tensors()[k];
    SCOPED_TRACE(written[k].name);
    EXPECT_EQ(t.name, written[k].name);
    EXPECT_EQ(t.type, written[k].type);
    EXPECT_EQ(t.dims, written[k].dims);
    ASSERT_EQ(t.nbytes, written[k].bytes.size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.nbytes), written[k].bytes);
    EXPECT_EQ(t.offset % 32, 0u);
  }
  const TensorInfo* fill = (*f)->FindTensor("t.fill");
  ASSERT_NE(fill, nullptr);
  ASSERT_EQ(fill->nbytes, 84u);
  for (size_t k = 0; k < 84; ++k) ASSERT_EQ(fill->data[k], static_cast<uint8_t>(k * 7));
  std::remove(path.c_str());
}

TEST(GgufWriter, CustomAlignmentIsWrittenAndHonoured) {
  for (uint64_t alignment : {1ull, 8ull, 64ull, 4096ull}) {
    GgufWriter w(alignment);
    w.SetString("general.name", "aligned");
    ASSERT_TRUE(w.AddTensorBytes("a", GgmlType::F32, {3}, std::string(12, 'a')).ok());
    ASSERT_TRUE(w.AddTensorBytes("b", GgmlType::F16, {5}, std::string(10, 'b')).ok());
    const std::string path = TempPath("test_gguf_writer_align.gguf");
    ASSERT_TRUE(w.Write(path).ok());
    auto f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->alignment(), alignment);
    if (alignment != 32) {
      EXPECT_EQ(*(*f)->GetInt("general.alignment"), static_cast<int64_t>(alignment));
    }
    for (const TensorInfo& t : (*f)->tensors()) {
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % std::min<uint64_t>(alignment, 4096), 0u);
    }
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*f)->FindTensor("b")->data), 10), std::string(10, 'b'));
    std::remove(path.c_str());
  }
}

TEST(GgufWriter, CopyMetadataFromAnotherFile) {
  GgufWriter a;
  a.SetString("general.architecture", "llama");
  a.SetU32("llama.block_count", 3);
  const std::string pa = TempPath("test_gguf_writer_copy_a.gguf");
  ASSERT_TRUE(a.Write(pa).ok());
  auto fa = GgufFile::Open(pa);
  ASSERT_TRUE(fa.ok());
  GgufWriter b;
  b.CopyMetadataFrom(**fa);
  b.SetU32("general.file_type", 15);
  const std::string pb = TempPath("test_gguf_writer_copy_b.gguf");
  ASSERT_TRUE(b.Write(pb).ok());
  auto fb = GgufFile::Open(pb);
  ASSERT_TRUE(fb.ok());
  EXPECT_EQ(*(*fb)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*fb)->GetInt("llama.block_count"), 3);
  EXPECT_EQ(*(*fb)->GetInt("general.file_type"), 15);
  std::remove(pa.c_str());
  std::remove(pb.c_str());
}

TEST(GgufWriter, RejectsBadTensorsAndLeavesNoFileOnFailure) {
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("q", GgmlType::Q4_0, {33}, nullptr).ok());       // not a multiple of 32
  EXPECT_FALSE(w.AddTensor("z", GgmlType::F32, {4, 0}, nullptr).ok());      // zero dim
  EXPECT_FALSE(w.AddTensor("five", GgmlType::F32, {1, 1, 1, 1, 1}, nullptr).ok());
  EXPECT_FALSE(w.AddTensorBytes("short", GgmlType::F32, {4}, std::string(15, 'x')).ok());
  ASSERT_TRUE(w.AddTensorBytes("ok", GgmlType::F32, {4}, std::string(16, 'x')).ok());
  EXPECT_FALSE(w.AddTensorBytes("ok", GgmlType::F32, {4}, std::string(16, 'x')).ok());  // duplicate
  ASSERT_TRUE(w.AddTensor("failing", GgmlType::F32, {4}, [](uint8_t*, size_t) {
                 return absl::DataLossError("source went away");
               }).ok());
  const std::string path = TempPath("test_gguf_writer_fail.gguf");
  std::remove(path.c_str());
  absl::Status s = w.Write(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("failing"), std::string::npos);
  EXPECT_NE(s.message().find("source went away"), std::string::npos);
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
  EXPECT_FALSE(GgufWriter().Write("/nonexistent/dir/x.gguf").ok());
}

}  // namespace
}  // namespace rocmforge::gguf
