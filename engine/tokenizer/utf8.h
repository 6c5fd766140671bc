// UTF-8 helpers shared by the tokenizers and the detokenizers.
//
// Decoding follows the Unicode "maximal subpart" rule (the one Python's
// errors="replace" and browsers use): each maximal invalid subsequence becomes
// one U+FFFD. Because a decision about a byte never depends on bytes after a
// valid-but-incomplete prefix, decoding a stream piece by piece (holding back
// such a prefix) gives the same text as decoding it whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rocmforge::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the sequence announced by a lead byte: 1..4, or 1 for a byte that
// cannot start a sequence (continuation bytes, 0xC0/0xC1, 0xF5..0xFF).
size_t SequenceLength(uint8_t lead);

// Appends `cp` (<= 0x10FFFF) encoded as UTF-8.
void AppendCodepoint(uint32_t cp, std::string* out);

// Decodes one code point at `s[*pos]` if it is a complete, valid sequence and
// advances *pos; otherwise returns false and leaves *pos alone.
bool DecodeOne(std::string_view s, size_t* pos, uint32_t* cp);

// Copies the valid UTF-8 of `in` to `out`, replacing each maximal invalid
// subpart by U+FFFD. When `final` is false, a trailing valid-but-incomplete
// prefix (1 to 3 bytes that may still become a character) is not consumed.
// Returns the number of bytes of `in` consumed.
size_t AppendValid(std::string_view in, bool final, std::string* out);

// True when `s` is entirely valid UTF-8.
bool IsValid(std::string_view s);

// Copy of `s` in which every byte that does not belong to a complete, valid
// sequence becomes one U+FFFD. Unlike AppendValid's maximal-subpart rule, a
// truncated sequence such as "\xE2\x82" gives one U+FFFD per byte (two here);
// the worker cleans text for proto3 `string` fields this way.
std::string ReplaceEachInvalidByte(std::string_view s);

}  // namespace rocmforge::utf8
