// Golden data from llama.cpp itself: for one fixed 256-value input, the bytes
// ggml's quantize_row_<type>_ref writes, and an FNV-1a hash of the floats
// ggml's dequantize_row_<type> returns for those bytes. Generated once with
// libggml-base.so of node-llama-cpp 3.22.1 (llama.cpp as a peer, see
// shared/peers/README.md); the generator called those two functions on
// GoldenInput() below and printed this table. Our quantizer must write the
// same bytes (same scale searches, same rounding) and our dequantizer must
// return bit-identical floats, so files made by either tool decode the same
// everywhere (CPU, GPU kernels, llama.cpp).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/ggml_types.h"
#include "engine/gguf/quant.h"

namespace rocmforge::quant {
namespace {

// Every value is exact in float (small integers over powers of two), so the
// input is the same on any compiler: LCG samples in [-0.5, 0.5) scaled by
// 1, 1/2, 1/4, 1/8 per 32-block, a few 8x outliers, one all-positive
// 16-value sub-block.
std::vector<float> GoldenInput() {
  std::vector<float> x(256);
  uint32_t s = 12345;
  for (int i = 0; i < 256; ++i) {
    s = s * 1664525u + 1013904223u;
    const int k = static_cast<int>(s >> 20) - 2048;
    float v = static_cast<float>(k) / 4096.0f;
    v = v / static_cast<float>(1 << ((i / 32) % 4));
    if (i % 37 == 5) v *= 8.0f;
    if ((i / 16) == 9) v = std::fabs(v) + 0.25f;
    x[i] = v;
  }
  return x;
}

uint64_t Fnv1a(const std::vector<float>& y) {
  uint64_t h = 1469598103934665603ull;
  for (float f : y) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    for (int k = 0; k < 4; ++k) {
      h ^= (b >> (8 * k)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

std::string Hex(const std::vector<uint8_t>& b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint8_t v : b) {
    s += kDigits[v >> 4];
    s += kDigits[v & 15];
  }
  return s;
}

std::vector<uint8_t> FromHex(const std::string& s) {
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return out;
}

struct Golden {
  GgmlType type;
  uint64_t dequant_fnv;  // 0: ggml exports no dequantizer for this type (Q8_1)
  const char* hex;
};

// clang-format off
const Golden kGolden[] = {
    {GgmlType::Q4_0, 0xc52068cc4abc0a03ull,
     "3436879788989980888878898779799789785aad887998758b6689a985788067975a75a61c28b99787ba9ab575a7bb5a"
     "9896579bba50ffab889788780998879887988978778889776cb1466a6767484945666708686869696549722f67778876"
     "969a676a8667886677960987d7a3db594424be96a00fec7a0241b9b759ad88a456a8766056a7a588869b778b757b9897"},
    {GgmlType::Q4_1, 0xc6b2fd715b7c3198ull,
     "ab3334c2dbfbddfeffe0ddddcddeebcebfebcebdc72bc1b3446235685066422348544f75357168162d261cb4edd9b9fe"
     "cef797eaef6dcbc87abefe60cb28f1ab11132231f10123011302203233121133212f0bb5966075648281876564f26353"
     "62626782db2c72bb9bbaddb9daefabafdaabcd99baea0ecaa62381ae24a5bbdb41595ff01275fdbe3548a552f022e3ab"
     "8825587f871629544830565068513535"},
    {GgmlType::Q5_0, 0x8e5d4e2aff5a2230ull,
     "3432dcdbfe26fe2e002132100000f0011ee1e22ef1d05aa9d320c59510d22fdaf6dd12421bef00ce1fb4db4d1c241967"
     "bf6d533e0e65257bea4f56a3212cae1665a0ffa7b964a367011ffff00121fe201f2f02efef1011ee6cad32be00009bc4"
     "bdcf91929acdce01c0d0c1b2bb91722ba44434a1cefd11fc2d23ded41ddff0ccee2d020ed79f93d371b1a69388486c3b"
     "301db8f40492736da34988a0822a62cbbb40fbc0ad5d5af10b27fd06dbf63f2f"},
    {GgmlType::Q5_1, 0x0143ec8eb57faf1bull,
     "6c2f34c2dfffffffa7f7abfcfec0abbb9cadc78d7fe79c6a8627c1b30845000088c559c0a0dd753580b99ffb6af2c02d"
     "fa211cb49f7fff6ddaa373ec9cff4ec4dedb9781e48eedd0a424f1ab0000100032155563f10256032515316576242166"
     "e62a0bb5000071822dd0eab814131fcbc9f5b5b6c4d3de14b32872bbffffffbf3775ba83c4ce464fb4478a4365d50da6"
     "671f81ae6c2c8e4c485b66a681b3afe025fafb6d7b814ba4b61ee3ab4d111100103ab0ef1e3d32b99060bda1d0b25a6b"},
    {GgmlType::Q8_0, 0x8356d17c60911607ull,
     "4126ecec020611810002040ced0a13ef08fefc13fc131407fd00f7fd07f2ef0ef8ec651dfcec072cd21bedef2b047f0f"
     "0ce02919fc15f0140719fbe4fc100223f62817de241817edee2425d8d1f42e1c04e1f32e2781291803311034f22328ce"
     "0f0ed00a30ce081cf90907fcf6f90cfd0907f3080b02f70dfdf7060a7ff005f1fbf4000d0ffafb0e772126e2150af8f1"
     "2d190ffbfefff4f22af53b23271c38393a211e7f1c1b1e24243b811ff3ea05dee519ef1ce4f604deece812eddff406f8"
     "0c0fe6e507e7f9e3f0128102e713d1e93c3fa0267f97bde25f70ea18eab8b3373d5ccfebe479a5097e3acbd230e39114"
     "2502257f1c1832fc26c914ce29d406082adc0b1d2dd9dc07fced0b011608e8ef"},
    {GgmlType::Q8_1, 0x0000000000000000ull,
     "4126e9c1ecec020611810002040ced0a13ef08fefc13fc131407fd00f7fd07f2ef0ef8ec651d373efcec072cd21bedef"
     "2b047f0f0ce02919fc15f0140719fbe4fc100223f62817de24186f3417edee2425d8d1f42e1c04e1f32e278129180331"
     "1034f22328ce0f0ed00a30ce081c8938f90907fcf6f90cfd0907f3080b02f70dfdf7060a7ff005f1fbf4000d0ffafb0e"
     "7721764826e2150af8f12d190ffbfefff4f22af53b23271c38393a211e7f1c1b1e24243b811f20c2f3ea05dee519ef1c"
     "e4f604deece812eddff406f80c0fe6e507e7f9e3f0128102e7138332d1e93c3fa0267f97bde25f70ea18eab8b3373d5c"
     "cfebe479a5097e3acbd230e39114bf342502257f1c1832fc26c914ce29d406082adc0b1d2dd9dc07fced0b011608e8ef"},
    {GgmlType::Q2_K, 0x82e41df60b7cf545ull,
     "ff24131211010002231612540101010076e2e77b3364d363fbf73ee7e7b23bc7151b051bcb1a051115090608040e1900"
     "47005b920109670f4206161241010b01ca1d9d9dce0e0e9d4d4fad5d8d8d514e132d9e32"},
    {GgmlType::Q3_K, 0xa16feabfcc6e98e1ull,
     "46de2f0557300be74ddf349b5f9ee5d94ba8af2860e8cf8bebcd2a8967e889efc34740dc95fcb4c45c5083708117dc9c"
     "112809083c47151c12393333f731063fad1ba617f5ed883eb7dcc08499b91839bea323c3a2929e0f334cc32fe3276352"
     "50e5d7621c111f15a4aa969a2fa6"},
    {GgmlType::Q4_K, 0xd72220450ff0e6cfull,
     "a81b462a7f51070a3f4505016f3424144b2b4d7e0f602d2d7e4eeb5e5f1b7e6d4d6f3d6f4f6e3d2d4c5d4e7c3b7f6c1b"
     "1b28281c0c1636182d2b0a27282d0c301d0b2a2dfb0d280c1c061a3a361a1d35b6a0d493a2f1b7f5a4b2d292b1a1e6b2"
     "98b6d6c5e8e8a8a6d5aec5a5b5e606d864356adb50597f3062055d0e65084542621a4a5c7305154e31274f3a53442a25"},
    {GgmlType::Q5_K, 0x660bee3db39331f2ull,
     "83174f2a7f50060a3f4505016d342414252565e7256061252725676525652721356565653d3535652531656521274531"
     "8757ab0c0ed05b5b0c9df7bdaf370ddb8acf6acfafdc7a3b89ba9cf8770ed9271b53432d1d1f5e245f4b0741543f1e50"
     "2e1b475fe90f440d2e0d39596e182f6d7d50ba3744f36ffb4885a5356353de63317dbd8bc1d1414cbc4f8b4b6cdd0da1"
     "c77ac5a6b1a2ee60c50aaa0cdb018b84d31585bae71b1a8d614f8e75a687344a"},
    {GgmlType::Q6_K, 0xcf197103bf6533b8ull,
     "6bcbc091946050d0b1731b83d5bc92105703e6045106a5905df56576faaa0cffe1753e656be9f574752f004ccd5886fa"
     "132ffcd01a4df44613330ed5c8211edac5651109956a00be1683813168aa632841271699c252711878e00919e8c74771"
     "75fd751298a6411978e7b3c26fbbf0ef18ad81be03d4aab932ea8ef90ca411d029d9d6662a14da5ae6e621d6d6a926c6"
     "8a905a4414816a8e8ab695537b90827f64635911725e44bc71a64a8262926c7235d5590529e9e545b99445556569d1a9"
     "80151c09f504fe151438f5d8050506023492"},
    {GgmlType::Q8_K, 0xa50cdbfe30751898ull,
     "2110c83cecec020611810002040ced0a13ef08fefc13fc131407fd00f7fd07f2ef0ef8ecfffc0109f606fcfc09011b03"
     "03f90905ff05fd040205fffaff040008fe0905f902feff0303fdfcff040200fdff0403f5030200040104ff0303fc0101"
     "fc0104fcff0101fffeff02ff0101fe010200ff02fffe010214fd01fefffe000202ffff0210f30904fdfa140b06feff00"
     "fbfa12fb1a0f110c1919190e0d380c0c0d10101afcfa02f6f808fb09f8fd01f6faf906faf6fd02fe0405f8f802f8fef7"
     "fb06da01feff0202fc0205fcfdff0404ff01fffdfd020204feffff05fc000502fefe02ff020002060101020002fd01fe"
     "02fe000002fe000102fefe0000ff01000100ffff83ff04002b001500fbff0e00020011002b004301d1ffb7ff00000600"
     "0c00feff"},
};
// clang-format on

TEST(QuantGolden, QuantizeMatchesLlamaCppBytes) {
  const std::vector<float> x = GoldenInput();
  for (const Golden& g : kGolden) {
    std::vector<uint8_t> ours(RowBytes(g.type, 256));
    QuantizeRow(g.type, x.data(), ours.data(), 256);
    EXPECT_EQ(Hex(ours), std::string(g.hex)) << TypeName(g.type);
  }
}

TEST(QuantGolden, DequantizeMatchesLlamaCppBitForBit) {
  for (const Golden& g : kGolden) {
    if (g.dequant_fnv == 0) continue;
    const std::vector<uint8_t> bytes = FromHex(g.hex);
    ASSERT_EQ(bytes.size(), RowBytes(g.type, 256)) << TypeName(g.type);
    std::vector<float> y(256);
    DequantizeRow(g.type, bytes.data(), y.data(), 256);
    EXPECT_EQ(Fnv1a(y), g.dequant_fnv) << TypeName(g.type);
  }
}

}  // namespace
}  // namespace rocmforge::quant
