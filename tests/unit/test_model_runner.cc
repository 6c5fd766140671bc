// SequenceRunner (what `rocmforge generate` runs on) and the backend factory.
#include "engine/model/sequence_runner.h"
#include "tests/unit/test_model_util.h"

namespace rocmforge::testing {
namespace {

TEST(SequenceRunnerTest, GreedyContinuationMatchesReferenceWithChunkedPrefill) {
  nlohmann::json ref = LoadReference("tiny-llama-spm");
  auto file = gguf::GgufFile::Open(ModelPath("tiny-llama-spm-f16.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto backend = CreateBackend("cpu", 2);
  ASSERT_TRUE(backend.ok());
  // max_step_tokens 3: every prompt is prefilled in several chunks.
  auto runner = SequenceRunner::Create(**file, backend->get(), 40, 3);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const int32_t vocab = (*runner)->model().config().n_vocab;
  for (const auto& gen : ref["generations"]) {
    (*runner)->Reset();
    const auto prompt = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    auto logits = (*runner)->Append(prompt);
    for (int step = 0; step < 16; ++step) {
      ASSERT_TRUE(logits.ok()) << logits.status();
      std::vector<float> host(vocab);
      ASSERT_TRUE((*backend)->Download(host.data(), *logits, vocab * sizeof(float)).ok());
      const int32_t next = Argmax(host.data(), vocab);
      ASSERT_EQ(next, greedy[step]) << gen["prompt"] << " step " << step;
      logits = (*runner)->Append({next});
    }
  }
}

TEST(SequenceRunnerTest, ContextOverflowIsAnError) {
  auto file = gguf::GgufFile::Open(ModelPath("tiny-llama-spm-f16.gguf"));
  ASSERT_TRUE(file.ok());
  auto backend = CreateBackend("cpu", 1);
  ASSERT_TRUE(backend.ok());
  auto runner = SequenceRunner::Create(**file, backend->get(), 16, 8);  // exactly one block
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->context_length(), 16);
  EXPECT_TRUE((*runner)->Append(std::vector<int32_t>(10, 5)).ok());
  auto over = (*runner)->Append(std::vector<int32_t>(7, 5));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE((*runner)->Append(std::vector<int32_t>(6, 5)).ok());
  EXPECT_FALSE((*runner)->Append({}).ok());
}

TEST(BackendFactoryTest, NamesDevices) {
  auto cpu = CreateBackend("cpu", 1);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ((*cpu)->name(), "cpu");
  EXPECT_FALSE((*cpu)->is_gpu());
  EXPECT_GT((*cpu)->AvailableMemoryBytes(), 0u);
  auto bad = CreateBackend("tpu", 1);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("tpu"), std::string::npos);
  EXPECT_FALSE(CreateBackend("cpu", -1).ok());
#if !defined(ROCMFORGE_HAVE_GPU)
  EXPECT_EQ(CreateBackend("gpu", 0).status().code(), absl::StatusCode::kUnavailable);
#endif
}

}  // namespace
}  // namespace rocmforge::testing
