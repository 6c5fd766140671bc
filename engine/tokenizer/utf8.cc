#include "engine/tokenizer/utf8.h"

namespace rocmforge::utf8 {
namespace {

// Length of the longest prefix of s[pos..] that is a valid start of a UTF-8
// sequence (Unicode Table 3-7, well-formed byte sequences), and whether that
// prefix is already a complete character.
struct Prefix {
  size_t len = 0;
  bool complete = false;
};

Prefix ValidPrefix(std::string_view s, size_t pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) return {1, true};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;   // no overlong forms
    if (b0 == 0xED) hi = 0x9F;   // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;   // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;   // nothing above U+10FFFF
  } else {
    return {0, false};
  }
  size_t len = 1;
  while (len < need && pos + len < s.size()) {
    const auto b = static_cast<uint8_t>(s[pos + len]);
    const uint8_t l = len == 1 ? lo : 0x80, h = len == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
    ++len;
  }
  return {len, len == need};
}

}  // namespace

size_t SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

void AppendCodepoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool DecodeOne(std::string_view s, size_t* pos, uint32_t* cp) {
  if (*pos >= s.size()) return false;
  const Prefix p = ValidPrefix(s, *pos);
  if (!p.complete) return false;
  const auto b0 = static_cast<uint8_t>(s[*pos]);
  uint32_t v = p.len == 1 ? b0 : p.len == 2 ? (b0 & 0x1F) : p.len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t i = 1; i < p.len; ++i) v = (v << 6) | (static_cast<uint8_t>(s[*pos + i]) & 0x3F);
  *cp = v;
  *pos += p.len;
  return true;
}

size_t AppendValid(std::string_view in, bool final, std::string* out) {
  size_t pos = 0;
  while (pos < in.size()) {
    const Prefix p = ValidPrefix(in, pos);
    if (p.complete) {
      out->append(in.substr(pos, p.len));
      pos += p.len;
    } else if (p.len > 0 && pos + p.len == in.size() && !final) {
      break;  // may still complete with the next bytes
    } else {
      out->append(kReplacement);
      pos += p.len > 0 ? p.len : 1;
    }
  }
  return pos;
}

bool IsValid(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (!DecodeOne(s, &pos, &cp)) return false;
  }
  return true;
}

std::string ReplaceEachInvalidByte(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    const size_t start = pos;
    if (DecodeOne(s, &pos, &cp)) {
      out.append(s.substr(start, pos - start));
    } else {
      out.append(kReplacement);
      ++pos;
    }
  }
  return out;
}

}  // namespace rocmforge::utf8
