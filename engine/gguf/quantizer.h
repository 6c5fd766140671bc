// Whole-model quantization: reads a GGUF, gives every tensor the type the
// quant mix chooses (quant_mix.h) and writes a new GGUF.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "engine/gguf/ggml_types.h"

namespace rocmforge::quant {

// Reads `in`, converts each tensor row by row (dequantize to float, then
// QuantizeRow to TensorTypeFor(ftype, ...)) on `threads` threads (0 = all
// cores), copies every metadata key, sets general.file_type = ftype and
// general.quantization_version = 2, and writes `out` (atomically: a partial
// file is never left under that name). Tensors already of the target type are
// copied byte for byte; an already-quantized source is dequantized first, so
// its error adds to the new one. Output is the same for any thread count.
// Errors name the file or tensor at fault, e.g. a source
// tensor of a type we cannot read (IQ*), or an `out` equal to `in`.
absl::Status QuantizeModel(const std::string& in, const std::string& out, FileType ftype,
                           int threads);

}  // namespace rocmforge::quant
