// The blocks of one sequence: block i holds the K/V of token positions
// [i * block_size, (i + 1) * block_size). The first `num_hashed` blocks are
// full, computed and known to the prefix cache by the hash chain ending in
// `last_hash`; they are read-only (other sequences may share them). Only the
// sequence's last, partly filled block is ever written.
#pragma once

#include <cstdint>
#include <vector>

namespace rocmforge::kv {

// Parent hash of a sequence's first block.
inline constexpr uint64_t kRootHash = 0x6a09e667f3bcc908ull;

struct BlockTable {
  std::vector<int32_t> blocks;
  int32_t num_hashed = 0;
  uint64_t last_hash = kRootHash;
};

}  // namespace rocmforge::kv
