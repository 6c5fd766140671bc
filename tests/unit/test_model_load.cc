// Model loading errors: unknown architectures, missing or misshapen tensors
// and bad step batches give clear errors, never crashes.
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "engine/gguf/gguf_writer.h"
#include "tests/unit/test_model_util.h"

namespace rocmforge::testing {
namespace {

// Copies the tiny llama model to a temp file, letting `edit` change the
// metadata and `keep`/`dims_of` drop or reshape tensors.
std::string WriteVariant(const std::string& tag, const std::function<void(gguf::GgufWriter&)>& edit,
                         const std::function<bool(const std::string&)>& keep,
                         const std::function<std::vector<int64_t>(const gguf::TensorInfo&)>& dims_of) {
  auto src = gguf::GgufFile::Open(ModelPath("tiny-llama-spm-f16.gguf"));
  EXPECT_TRUE(src.ok()) << src.status();
  gguf::GgufWriter w;
  w.CopyMetadataFrom(**src);
  edit(w);
  for (const gguf::TensorInfo& t : (*src)->tensors()) {
    if (!keep(t.name)) continue;
    EXPECT_TRUE(w.AddTensorBytes(t.name, t.type, dims_of(t), std::string(reinterpret_cast<const char*>(t.data), t.nbytes)).ok());
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("rocmforge_model_load_" + std::to_string(::getpid()) + "_" + tag + ".gguf")).string();
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

auto kNoEdit = [](gguf::GgufWriter&) {};
auto kKeepAll = [](const std::string&) { return true; };
auto kSameDims = [](const gguf::TensorInfo& t) { return t.dims; };

absl::Status LoadStatus(const std::string& path) {
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  auto backend = CreateBackend("cpu", 1);
  if (!backend.ok()) return backend.status();
  auto model = Model::Load(**file, backend->get(), 8);
  std::filesystem::remove(path);
  return model.status();
}

TEST(ModelLoadTest, UnknownArchitectureIsNamed) {
  const std::string path = WriteVariant(
      "arch", [](gguf::GgufWriter& w) { w.SetString("general.architecture", "gpt-neox"); }, kKeepAll, kSameDims);
  absl::Status s = LoadStatus(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("gpt-neox"), std::string::npos) << s;
  EXPECT_NE(s.message().find("llama, qwen2"), std::string::npos) << s;
}

TEST(ModelLoadTest, MissingTensorIsNamed) {
  const std::string path = WriteVariant(
      "missing", kNoEdit, [](const std::string& n) { return n != "blk.4.ffn_up.weight"; }, kSameDims);
  absl::Status s = LoadStatus(path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.4.ffn_up.weight"), std::string::npos) << s;
}

TEST(ModelLoadTest, MisshapenTensorIsNamed) {
  // Same bytes, rows and columns swapped: {256, 64} becomes {64, 256}.
  const std::string path = WriteVariant("shape", kNoEdit, kKeepAll, [](const gguf::TensorInfo& t) {
    return t.name == "blk.1.attn_k.weight" ? std::vector<int64_t>{t.dims[1], t.dims[0]} : t.dims;
  });
  absl::Status s = LoadStatus(path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.1.attn_k.weight"), std::string::npos) << s;
}

TEST(ModelLoadTest, MissingHyperParameterIsNamed) {
  const std::string path = WriteVariant(
      "meta", [](gguf::GgufWriter& w) { w.SetString("llama.block_count", "six"); }, kKeepAll, kSameDims);
  absl::Status s = LoadStatus(path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("block_count"), std::string::npos) << s;
}

TEST(ModelLoadTest, ForwardRejectsBadBatches) {
  LoadedModel m = LoadCpuModel(ModelPath("tiny-llama-spm-f16.gguf"), 1, 8, 16, 4);
  ASSERT_NE(m.model, nullptr);
  EXPECT_FALSE(m.model->Forward(MakeBatch({{{1, 99999}, 0, {0}}}, 16)).ok());  // token outside the vocabulary
  EXPECT_FALSE(m.model->Forward(MakeBatch({{std::vector<int32_t>(9, 5), 0, {0}}}, 16)).ok());  // > max_step_tokens
  EXPECT_FALSE(m.model->Forward(StepBatch{}).ok());
  StepBatch b = MakeBatch({{{1, 2}, 0, {0}}}, 16);
  b.seqs[0].block_table = {7};  // outside the pool of 4
  b.slots = {112, 113};
  EXPECT_FALSE(m.model->Forward(b).ok());
  // A good batch still works afterwards.
  EXPECT_TRUE(m.model->Forward(MakeBatch({{{1, 2}, 0, {0}}}, 16)).ok());
}

}  // namespace
}  // namespace rocmforge::testing
