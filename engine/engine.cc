// Engine::Create and the pure helpers it uses (pool sizing, request
// validation). The loop itself is in engine_loop.cc.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/backend/backend_factory.h"
#include "engine/common/status_macros.h"
#include "engine/engine_internal.h"
#include "engine/gguf/quant_mix.h"

namespace rocmforge {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kEos: return "eos";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

int32_t DefaultContextLength(int32_t n_ctx_train) {
  constexpr int32_t kMaxDefault = 8192;
  return n_ctx_train > 0 ? std::min(n_ctx_train, kMaxDefault) : kMaxDefault;
}

absl::StatusOr<KvPoolSize> SizeKvPool(const EngineOptions& options, size_t available_bytes,
                                      size_t kv_bytes_per_token, int32_t context_length) {
  const int64_t bs = options.kv_block_size;
  if (bs <= 0 || kv_bytes_per_token == 0 || context_length <= 0) {
    return absl::InvalidArgumentError("KV pool: block size, bytes per token and context must be > 0");
  }
  const int64_t blocks_per_context = (context_length + bs - 1) / bs;
  int64_t blocks = options.kv_blocks;
  if (blocks <= 0) {
    double bytes = static_cast<double>(available_bytes) * options.kv_memory_fraction;
    if (options.kv_memory_cap_bytes > 0) {
      bytes = std::min(bytes, static_cast<double>(options.kv_memory_cap_bytes));
    }
    blocks = static_cast<int64_t>(bytes / (static_cast<double>(kv_bytes_per_token) * bs));
    // More than every running sequence at full context can use only helps
    // the prefix cache; keep one context's worth for that and no more.
    const int64_t useful = (std::max<int64_t>(options.max_running, 1) + 1) * blocks_per_context;
    blocks = std::min(blocks, useful);
  }
  blocks = std::min<int64_t>(blocks, INT32_MAX / std::max<int64_t>(bs, 1));
  KvPoolSize out;
  out.num_blocks = static_cast<int32_t>(std::max<int64_t>(blocks, 0));
  out.context_length = static_cast<int32_t>(std::min<int64_t>(context_length, out.num_blocks * bs));
  if (out.context_length < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KV cache too small: ", out.num_blocks, " blocks of ", bs, " tokens (",
        kv_bytes_per_token * bs, " bytes each) from ", available_bytes,
        " bytes available; raise kv_blocks, kv_memory_fraction or kv_memory_cap_bytes"));
  }
  return out;
}

absl::Status ValidateGenerationRequest(const GenerationRequest& r, int32_t context_length,
                                       int32_t n_vocab) {
  const int64_t n = static_cast<int64_t>(r.prompt.size());
  if (n == 0) return absl::InvalidArgumentError("prompt is empty: give at least one token");
  if (n >= context_length) {
    return absl::InvalidArgumentError(absl::StrCat("prompt has ", n, " tokens; the context is ",
                                                   context_length,
                                                   " tokens and must leave room for at least one "
                                                   "generated token"));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (r.prompt[i] < 0 || r.prompt[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " has id ", r.prompt[i],
                                                     ", outside the vocabulary [0, ", n_vocab, ")"));
    }
  }
  RF_RETURN_IF_ERROR(ValidateSamplingParams(r.sampling));
  RF_RETURN_IF_ERROR(ValidateStoppingParams(r.stopping, context_length));
  if (r.resume_generated < 0 || r.resume_generated >= n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resume_generated is ", r.resume_generated, "; it must be in [0, prompt length ", n,
        ") because the original prompt is not empty"));
  }
  if (r.resume_generated >= r.stopping.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("resume_generated (", r.resume_generated,
                                                   ") leaves nothing to generate under max_tokens (",
                                                   r.stopping.max_tokens, ")"));
  }
  return absl::OkStatus();
}

std::string QuantizationName(const gguf::GgufFile& file) {
  const auto ftype = file.GetIntOr("general.file_type", -1);
  if (ftype.ok() && *ftype >= 0) {
    const std::string_view name = quant::FileTypeName(static_cast<FileType>(*ftype));
    if (!name.empty()) return std::string(name);
  }
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (t.dims.size() == 2) return std::string(TypeName(t.type));
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options,
                                                       EngineObserver* observer) {
  if (options.max_batch_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_tokens must be >= 1, got ", options.max_batch_tokens));
  }
  if (options.max_running < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_running must be >= 1, got ", options.max_running));
  }
  if (options.kv_block_size < 1 || options.kv_block_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_block_size must be in [1, 1024], got ", options.kv_block_size));
  }
  if (options.kv_blocks < 0 || options.context_length < 0 || options.kv_memory_cap_bytes < 0) {
    return absl::InvalidArgumentError("kv_blocks, context_length and kv_memory_cap_bytes must be >= 0");
  }
  if (!(options.kv_memory_fraction > 0.0 && options.kv_memory_fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_memory_fraction must be in (0, 1], got ", options.kv_memory_fraction));
  }

  EngineImpl::Parts parts;
  RF_ASSIGN_OR_RETURN(parts.file, gguf::GgufFile::Open(options.model_path));
  RF_ASSIGN_OR_RETURN(parts.tokenizer, Tokenizer::FromGguf(*parts.file));
  RF_ASSIGN_OR_RETURN(parts.backend, CreateBackend(options.device, options.threads));
  RF_ASSIGN_OR_RETURN(parts.model, Model::Load(*parts.file, parts.backend.get(), options.max_batch_tokens));
  const ModelConfig& config = parts.model->config();

  const int32_t context =
      options.context_length > 0 ? options.context_length : DefaultContextLength(config.n_ctx_train);
  RF_ASSIGN_OR_RETURN(const KvPoolSize pool,
                      SizeKvPool(options, parts.backend->AvailableMemoryBytes(),
                                 parts.model->KvBytesPerToken(), context));
  KvCacheShape shape;
  shape.n_layers = config.n_layers;
  shape.n_kv_heads = config.n_kv_heads;
  shape.head_dim = config.head_dim;
  shape.block_size = options.kv_block_size;
  shape.num_blocks = pool.num_blocks;
  RF_RETURN_IF_ERROR(parts.backend->InitKvCache(shape));
  // The pool takes at most what every running sequence can use at full
  // context, so memory is often left over (~35 GB on an 80 GB GPU with
  // Llama-3-8B and the worker's defaults).
  if (options.use_spare_memory) parts.backend->UseSpareMemory(parts.backend->AvailableMemoryBytes());
  parts.context_length = pool.context_length;
  parts.kv_blocks = pool.num_blocks;
  return std::unique_ptr<Engine>(new EngineImpl(options, std::move(parts), observer));
}

}  // namespace rocmforge
