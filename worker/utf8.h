// UTF-8 helpers for text that goes into proto3 `string` fields, which must be
// valid UTF-8 (a peer's parser rejects the whole message otherwise).
#pragma once

#include <string>
#include <string_view>

namespace rocmforge::worker {

bool IsValidUtf8(std::string_view s);
// Replaces every invalid byte sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace rocmforge::worker
