// Finds stop strings in streamed text.
//
// Text arrives in pieces (one per generated token). Push() returns the part
// that can be shown now: text that might be the beginning of a stop string is
// held back until it either completes the stop string (then it and everything
// after it is dropped and stopped() turns true) or stops matching (then it is
// released). The engine loop and `rocmforge generate` both use this.
// Pieces are expected to be complete UTF-8 and stop strings valid UTF-8, so
// held-back text always splits at character boundaries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rocmforge {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stop_strings);

  // Feeds new text; returns the text now safe to emit. After a stop, returns "".
  std::string Push(std::string_view text);
  // At the end of generation (no stop found): the held-back text.
  std::string Flush();

  bool stopped() const { return stopped_; }
  // The stop string that matched (empty unless stopped()).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace rocmforge
