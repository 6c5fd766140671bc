// Tensor element types and quantization block layouts, exactly as GGUF/ggml
// define them (ggml.h / ggml-common.h). These structs are read straight out of
// the mmapped file and uploaded byte-for-byte to the GPU, so their size and
// field order are part of the file format: do not reorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rocmforge {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3,
  Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30,
  kCount = 31,
};

// Block geometry of a type. block_size elements are stored in type_size bytes.
// `supported` is false for types we recognise but cannot compute with (IQ*),
// which the loader rejects with a clear message.
struct GgmlTypeInfo {
  std::string_view name;
  int64_t block_size;
  size_t type_size;
  bool quantized;
  bool supported;
};

// Returns nullptr for a value outside the enum (e.g. a corrupt file).
const GgmlTypeInfo* GetTypeInfo(GgmlType t);
const GgmlTypeInfo* GetTypeInfo(uint32_t raw);
std::string_view TypeName(GgmlType t);
// Parses "Q4_K", "f16", ... (case-insensitive). Returns false if unknown.
bool ParseTypeName(std::string_view name, GgmlType* out);

// Bytes of one row of `n` elements; n must be a multiple of the block size.
size_t RowBytes(GgmlType t, int64_t n);

constexpr int kQK4_0 = 32, kQK4_1 = 32, kQK5_0 = 32, kQK5_1 = 32, kQK8_0 = 32, kQK8_1 = 32;
constexpr int kQK_K = 256;         // super-block size of the k-quants
constexpr int kKScaleSize = 12;    // packed 6-bit scales of Q4_K / Q5_K

using ggml_half = uint16_t;  // IEEE binary16 bits

struct BlockQ4_0 { ggml_half d; uint8_t qs[kQK4_0 / 2]; };
struct BlockQ4_1 { ggml_half d; ggml_half m; uint8_t qs[kQK4_1 / 2]; };
struct BlockQ5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[kQK5_0 / 2]; };
struct BlockQ5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[kQK5_1 / 2]; };
struct BlockQ8_0 { ggml_half d; int8_t qs[kQK8_0]; };
struct BlockQ8_1 { ggml_half d; ggml_half s; int8_t qs[kQK8_1]; };  // s = d * sum(qs)

struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; ggml_half d; ggml_half dmin; };
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; ggml_half d; };
struct BlockQ4_K { ggml_half d; ggml_half dmin; uint8_t scales[kKScaleSize]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { ggml_half d; ggml_half dmin; uint8_t scales[kKScaleSize]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; ggml_half d; };
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// general.file_type values (llama_ftype) that name a whole model's quant mix.
enum class FileType : uint32_t {
  ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7,
  MOSTLY_Q5_0 = 8, MOSTLY_Q5_1 = 9, MOSTLY_Q2_K = 10, MOSTLY_Q3_K_S = 11,
  MOSTLY_Q3_K_M = 12, MOSTLY_Q3_K_L = 13, MOSTLY_Q4_K_S = 14, MOSTLY_Q4_K_M = 15,
  MOSTLY_Q5_K_S = 16, MOSTLY_Q5_K_M = 17, MOSTLY_Q6_K = 18, MOSTLY_BF16 = 32,
};

}  // namespace rocmforge
