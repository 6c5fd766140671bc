// The ggml type table: block geometry of every GgmlType, as ggml.c defines it.
#include "engine/gguf/ggml_types.h"

#include <cctype>

namespace rocmforge {
namespace {

// Indexed by the raw enum value. Holes in the enum (4, 5: the removed Q4_2 and
// Q4_3) have an empty name and are treated as unknown.
// `supported` marks what the engine can compute with; the IQ* and the integer
// types are recognised (so a file using them gets a clear message) but not computed.
constexpr GgmlTypeInfo kTypes[static_cast<int>(GgmlType::kCount)] = {
    /* 0  F32     */ {"F32", 1, 4, false, true},
    /* 1  F16     */ {"F16", 1, 2, false, true},
    /* 2  Q4_0    */ {"Q4_0", kQK4_0, sizeof(BlockQ4_0), true, true},
    /* 3  Q4_1    */ {"Q4_1", kQK4_1, sizeof(BlockQ4_1), true, true},
    /* 4  (Q4_2)  */ {"", 0, 0, false, false},
    /* 5  (Q4_3)  */ {"", 0, 0, false, false},
    /* 6  Q5_0    */ {"Q5_0", kQK5_0, sizeof(BlockQ5_0), true, true},
    /* 7  Q5_1    */ {"Q5_1", kQK5_1, sizeof(BlockQ5_1), true, true},
    /* 8  Q8_0    */ {"Q8_0", kQK8_0, sizeof(BlockQ8_0), true, true},
    /* 9  Q8_1    */ {"Q8_1", kQK8_1, sizeof(BlockQ8_1), true, true},
    /* 10 Q2_K    */ {"Q2_K", kQK_K, sizeof(BlockQ2_K), true, true},
    /* 11 Q3_K    */ {"Q3_K", kQK_K, sizeof(BlockQ3_K), true, true},
    /* 12 Q4_K    */ {"Q4_K", kQK_K, sizeof(BlockQ4_K), true, true},
    /* 13 Q5_K    */ {"Q5_K", kQK_K, sizeof(BlockQ5_K), true, true},
    /* 14 Q6_K    */ {"Q6_K", kQK_K, sizeof(BlockQ6_K), true, true},
    /* 15 Q8_K    */ {"Q8_K", kQK_K, sizeof(BlockQ8_K), true, true},
    // IQ sizes from ggml-common.h (block_iq2_xxs etc.).
    /* 16 IQ2_XXS */ {"IQ2_XXS", kQK_K, 2 + kQK_K / 8 * 2, true, false},
    /* 17 IQ2_XS  */ {"IQ2_XS", kQK_K, 2 + kQK_K / 8 * 2 + kQK_K / 32, true, false},
    /* 18 IQ3_XXS */ {"IQ3_XXS", kQK_K, 2 + 3 * (kQK_K / 8), true, false},
    /* 19 IQ1_S   */ {"IQ1_S", kQK_K, 2 + kQK_K / 8 + kQK_K / 16, true, false},
    /* 20 IQ4_NL  */ {"IQ4_NL", 32, 2 + 16, true, false},
    /* 21 IQ3_S   */ {"IQ3_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + kQK_K / 32 + 4, true, false},
    /* 22 IQ2_S   */ {"IQ2_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 16, true, false},
    /* 23 IQ4_XS  */ {"IQ4_XS", kQK_K, 2 + 2 + kQK_K / 64 + kQK_K / 2, true, false},
    /* 24 I8      */ {"I8", 1, 1, false, false},
    /* 25 I16     */ {"I16", 1, 2, false, false},
    /* 26 I32     */ {"I32", 1, 4, false, false},
    /* 27 I64     */ {"I64", 1, 8, false, false},
    /* 28 F64     */ {"F64", 1, 8, false, false},
    /* 29 IQ1_M   */ {"IQ1_M", kQK_K, kQK_K / 8 + kQK_K / 16 + kQK_K / 32, true, false},
    /* 30 BF16    */ {"BF16", 1, 2, false, true},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

const GgmlTypeInfo* GetTypeInfo(uint32_t raw) {
  if (raw >= static_cast<uint32_t>(GgmlType::kCount)) return nullptr;
  const GgmlTypeInfo* info = &kTypes[raw];
  return info->name.empty() ? nullptr : info;
}

const GgmlTypeInfo* GetTypeInfo(GgmlType t) { return GetTypeInfo(static_cast<uint32_t>(t)); }

std::string_view TypeName(GgmlType t) {
  const GgmlTypeInfo* info = GetTypeInfo(t);
  return info ? info->name : std::string_view("UNKNOWN");
}

bool ParseTypeName(std::string_view name, GgmlType* out) {
  for (uint32_t raw = 0; raw < static_cast<uint32_t>(GgmlType::kCount); ++raw) {
    const GgmlTypeInfo* info = GetTypeInfo(raw);
    if (info && EqualsIgnoreCase(info->name, name)) {
      *out = static_cast<GgmlType>(raw);
      return true;
    }
  }
  return false;
}

size_t RowBytes(GgmlType t, int64_t n) {
  const GgmlTypeInfo* info = GetTypeInfo(t);
  if (!info || n <= 0) return 0;
  return static_cast<size_t>(n / info->block_size) * info->type_size;
}

}  // namespace rocmforge
