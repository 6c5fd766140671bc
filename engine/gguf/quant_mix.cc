// Whole-model quant mixes, following llama.cpp's llama_tensor_get_type for the
// mixes we support (no importance matrix, no MoE):
//
//   base type      F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 as named; Q2_K -> Q2_K;
//                  Q3_K_S/M/L -> Q3_K; Q4_K_S/M -> Q4_K; Q5_K_S/M -> Q5_K; Q6_K.
//   1-D tensors    (norms, biases) stay F32; so does any tensor whose name does
//                  not end in "weight" or that contains "_norm.weight".
//   output.weight  Q6_K for every quantized mix except Q8_0 (stays Q8_0); Q8_0
//                  when its width is not a multiple of 256. With tied
//                  embeddings (no output.weight) token_embd.weight gets this
//                  treatment instead.
//   attn_v.weight  Q2_K: Q4_K if n_gqa >= 4, else Q3_K; Q3_K_M: Q5_K in
//                  layers 0-1, else Q4_K; Q3_K_L: Q5_K; Q4_K_S: Q5_K in layers 0-3;
//                  Q4_K_M / Q5_K_M: Q6_K where use_more_bits(layer).
//   ffn_down       Q2_K: Q3_K; Q3_K_M: Q5_K in the first n/16 layers, else Q4_K;
//                  Q3_K_L: Q5_K; Q4_K_S: Q5_K in the first n/8 layers;
//                  Q4_K_M / Q5_K_M: Q6_K where use_more_bits(layer).
//   attn_output    Q2_K: Q3_K; Q3_K_M: Q4_K; Q3_K_L: Q5_K.
//   attn_qkv       Q3_K_M/L: Q4_K; Q4_K_M: Q5_K; Q5_K_M: Q6_K.
//   use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
//   (the first and last eighth of the layers and every third one between).
//
// A k-quant needs rows that are a multiple of 256 wide; otherwise llama.cpp
// falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> IQ4_NL
// (which we do not implement, so Q4_0 here), and to F16 if even that block
// size does not divide the width.
//
// Checked: for all 17 mixes, both models in models/ quantize to tensors
// byte-identical to llama.cpp's llama_model_quantize (same types, same bytes).
#include <cctype>
#include <charconv>
#include <string>

#include "engine/gguf/quant_mix.h"

namespace rocmforge::quant {
namespace {

struct MixName {
  FileType type;
  std::string_view name;
};

constexpr MixName kMixes[] = {
    {FileType::ALL_F32, "F32"},         {FileType::MOSTLY_F16, "F16"},
    {FileType::MOSTLY_BF16, "BF16"},    {FileType::MOSTLY_Q4_0, "Q4_0"},
    {FileType::MOSTLY_Q4_1, "Q4_1"},    {FileType::MOSTLY_Q5_0, "Q5_0"},
    {FileType::MOSTLY_Q5_1, "Q5_1"},    {FileType::MOSTLY_Q8_0, "Q8_0"},
    {FileType::MOSTLY_Q2_K, "Q2_K"},    {FileType::MOSTLY_Q3_K_S, "Q3_K_S"},
    {FileType::MOSTLY_Q3_K_M, "Q3_K_M"}, {FileType::MOSTLY_Q3_K_L, "Q3_K_L"},
    {FileType::MOSTLY_Q4_K_S, "Q4_K_S"}, {FileType::MOSTLY_Q4_K_M, "Q4_K_M"},
    {FileType::MOSTLY_Q5_K_S, "Q5_K_S"}, {FileType::MOSTLY_Q5_K_M, "Q5_K_M"},
    {FileType::MOSTLY_Q6_K, "Q6_K"},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

GgmlType BaseType(FileType f) {
  switch (f) {
    case FileType::ALL_F32: return GgmlType::F32;
    case FileType::MOSTLY_F16: return GgmlType::F16;
    case FileType::MOSTLY_BF16: return GgmlType::BF16;
    case FileType::MOSTLY_Q4_0: return GgmlType::Q4_0;
    case FileType::MOSTLY_Q4_1: return GgmlType::Q4_1;
    case FileType::MOSTLY_Q5_0: return GgmlType::Q5_0;
    case FileType::MOSTLY_Q5_1: return GgmlType::Q5_1;
    case FileType::MOSTLY_Q8_0: return GgmlType::Q8_0;
    case FileType::MOSTLY_Q2_K: return GgmlType::Q2_K;
    case FileType::MOSTLY_Q3_K_S:
    case FileType::MOSTLY_Q3_K_M:
    case FileType::MOSTLY_Q3_K_L: return GgmlType::Q3_K;
    case FileType::MOSTLY_Q4_K_S:
    case FileType::MOSTLY_Q4_K_M: return GgmlType::Q4_K;
    case FileType::MOSTLY_Q5_K_S:
    case FileType::MOSTLY_Q5_K_M: return GgmlType::Q5_K;
    case FileType::MOSTLY_Q6_K: return GgmlType::Q6_K;
  }
  return GgmlType::F16;
}

bool IsQuantized(GgmlType t) { return t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16; }

bool IsKQuant(GgmlType t) {
  return t == GgmlType::Q2_K || t == GgmlType::Q3_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
         t == GgmlType::Q6_K;
}

int64_t BlockSize(GgmlType t) {
  if (IsKQuant(t)) return kQK_K;
  if (IsQuantized(t)) return 32;
  return 1;
}

// Layer number of "blk.N.<rest>", or -1.
int LayerOf(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return -1;
  int layer = -1;
  const char* begin = name.data() + kPrefix.size();
  const auto [ptr, ec] = std::from_chars(begin, name.data() + name.size(), layer);
  if (ec != std::errc() || ptr == begin) return -1;
  return layer;
}

bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

}  // namespace

// llama.cpp's quantize accepts these short names for the _M mixes too.
constexpr MixName kAliases[] = {
    {FileType::MOSTLY_Q3_K_M, "Q3_K"},
    {FileType::MOSTLY_Q4_K_M, "Q4_K"},
    {FileType::MOSTLY_Q5_K_M, "Q5_K"},
};

bool ParseFileType(std::string_view name, FileType* out) {
  for (const auto& m : kAliases) {
    if (EqualsIgnoreCase(name, m.name)) {
      *out = m.type;
      return true;
    }
  }
  for (const auto& m : kMixes) {
    if (EqualsIgnoreCase(name, m.name)) {
      *out = m.type;
      return true;
    }
  }
  return false;
}

std::string_view FileTypeName(FileType t) {
  for (const auto& m : kMixes) {
    if (m.type == t) return m.name;
  }
  return "unknown";
}

std::string SupportedFileTypeNames() {
  std::string out;
  for (const auto& m : kMixes) {
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

GgmlType TensorTypeFor(FileType ftype, std::string_view name, int n_dims, int64_t cols,
                       int n_layers, bool has_output, int n_gqa) {
  const bool is_weight = name.size() >= 6 && name.substr(name.size() - 6) == "weight";
  if (n_dims < 2 || !is_weight || Contains(name, "_norm.weight")) return GgmlType::F32;

  const GgmlType base = BaseType(ftype);
  GgmlType t = base;
  if (IsQuantized(base)) {
    const int layer = LayerOf(name);
    const int n = n_layers > 0 ? n_layers : 1;
    const FileType f = ftype;
    using FT = FileType;
    if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
      if (cols % kQK_K != 0) {
        t = GgmlType::Q8_0;
      } else if (t != GgmlType::Q8_0) {
        t = GgmlType::Q6_K;
      }
    } else if (Contains(name, "attn_v.weight")) {
      if (f == FT::MOSTLY_Q2_K) t = n_gqa >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
      else if (f == FT::MOSTLY_Q3_K_M) t = layer < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
      else if (f == FT::MOSTLY_Q3_K_L) t = GgmlType::Q5_K;
      else if ((f == FT::MOSTLY_Q4_K_M || f == FT::MOSTLY_Q5_K_M) && UseMoreBits(layer, n)) t = GgmlType::Q6_K;
      else if (f == FT::MOSTLY_Q4_K_S && layer < 4) t = GgmlType::Q5_K;
    } else if (Contains(name, "ffn_down")) {
      if (f == FT::MOSTLY_Q2_K) t = GgmlType::Q3_K;
      else if (f == FT::MOSTLY_Q3_K_M) t = layer < n / 16 ? GgmlType::Q5_K : GgmlType::Q4_K;
      else if (f == FT::MOSTLY_Q3_K_L) t = GgmlType::Q5_K;
      else if ((f == FT::MOSTLY_Q4_K_M || f == FT::MOSTLY_Q5_K_M) && UseMoreBits(layer, n)) t = GgmlType::Q6_K;
      else if (f == FT::MOSTLY_Q4_K_S && layer < n / 8) t = GgmlType::Q5_K;
    } else if (Contains(name, "attn_output.weight")) {
      if (f == FT::MOSTLY_Q2_K) t = GgmlType::Q3_K;
      else if (f == FT::MOSTLY_Q3_K_M) t = GgmlType::Q4_K;
      else if (f == FT::MOSTLY_Q3_K_L) t = GgmlType::Q5_K;
    } else if (Contains(name, "attn_qkv.weight")) {
      if (f == FT::MOSTLY_Q3_K_M || f == FT::MOSTLY_Q3_K_L) t = GgmlType::Q4_K;
      else if (f == FT::MOSTLY_Q4_K_M) t = GgmlType::Q5_K;
      else if (f == FT::MOSTLY_Q5_K_M) t = GgmlType::Q6_K;
    }
  }

  // Widths the chosen block size does not divide.
  if (IsKQuant(t) && cols % kQK_K != 0) {
    switch (t) {
      case GgmlType::Q4_K: t = GgmlType::Q5_0; break;
      case GgmlType::Q5_K: t = GgmlType::Q5_1; break;
      case GgmlType::Q6_K: t = GgmlType::Q8_0; break;
      default: t = GgmlType::Q4_0; break;  // Q2_K, Q3_K (llama.cpp: IQ4_NL)
    }
  }
  if (cols % BlockSize(t) != 0) t = GgmlType::F16;
  return t;
}

}  // namespace rocmforge::quant
