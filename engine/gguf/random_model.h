// Writes a GGUF model of a named shape (model_shapes.h) with random weights in
// any file type, fast enough for 8B models: `rocmforge make-model`.
//
// Weights ~ N(0, 0.02), RMSNorm weights ~ 1 + N(0, 0.02), biases ~ N(0, 0.02).
// Quantizing billions of random values would take far too long, so for each
// (tensor type, row length) a pool of kPoolRows distinct random rows is
// quantized once (in parallel) and every tensor of that kind is filled by
// cycling through the pool from a per-tensor random offset. The output is
// deterministic for a given seed, whatever the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/gguf/ggml_types.h"
#include "engine/gguf/model_shapes.h"

namespace rocmforge::gguf {

inline constexpr int kPoolRows = 256;

struct RandomModelOptions {
  uint64_t seed = 1;
  int threads = 0;       // 0 = std::thread::hardware_concurrency()
  bool progress = true;  // one line per tensor on stderr
};

// Tensor types come from quant::TensorTypeFor(ftype, ...); general.file_type is
// `ftype`. Writes `path` atomically (GgufWriter's tmp file + rename).
absl::Status WriteRandomModel(const ModelShape& shape, FileType ftype, const std::string& path,
                              const RandomModelOptions& options = {});

}  // namespace rocmforge::gguf
