// GPT-2's reversible mapping between bytes and printable Unicode characters,
// used by byte-level BPE: printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in byte order (so " " becomes "Ġ", "\n" becomes "Ċ").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rocmforge::byte_level {

// Appends the byte-level characters of `bytes` (always valid UTF-8).
void Encode(std::string_view bytes, std::string* out);

// Maps byte-level text back to bytes. A character outside the mapping is
// copied through unchanged (as UTF-8); invalid UTF-8 is copied byte by byte.
std::string Decode(std::string_view text);

}  // namespace rocmforge::byte_level
