#include "engine/tokenizer/byte_level.h"

#include <array>

#include "engine/tokenizer/utf8.h"

namespace rocmforge::byte_level {
namespace {

struct Tables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // every mapped code point is < 0x144
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.cp_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : next++;
      t.byte_to_cp[static_cast<size_t>(b)] = cp;
      t.cp_to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

void Encode(std::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  for (char c : bytes) utf8::AppendCodepoint(t.byte_to_cp[static_cast<uint8_t>(c)], out);
}

std::string Decode(std::string_view text) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    uint32_t cp = 0;
    if (!utf8::DecodeOne(text, &pos, &cp)) {
      out += text[pos++];
      continue;
    }
    if (cp < t.cp_to_byte.size() && t.cp_to_byte[cp] >= 0) {
      out += static_cast<char>(t.cp_to_byte[cp]);
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  return out;
}

}  // namespace rocmforge::byte_level
