// A fixed set of KV cache blocks, named 0 .. num_blocks-1, with a reference
// count each and a free list of the blocks nobody uses. Pure bookkeeping: the
// K/V memory itself lives in the backend (KvCacheShape::num_blocks blocks).
//
// A block is in exactly one of three states:
//   free        ref 0, on the free list, Allocate() may hand it out;
//   in use      ref >= 1 (shared read-only when > 1);
//   parked      ref 0, not on the free list: kept by a cache (PrefixCache)
//               until it is revived with Ref() or handed back with Release().
// Not thread-safe; the engine loop owns it.
#pragma once

#include <cstdint>
#include <vector>

namespace rocmforge::kv {

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

  // Pops a free block and gives it reference count 1; -1 when none is free.
  int32_t Allocate();
  // Adds a reference to a block that is in use or parked (never a free one).
  void Ref(int32_t block);
  // Drops one reference and returns the count left. A block that reaches 0 is
  // parked: the caller either keeps it in a cache or calls Release().
  int32_t Unref(int32_t block);
  // Puts a parked block (ref 0) back on the free list.
  void Release(int32_t block);

  int32_t ref_count(int32_t block) const { return ref_[block]; }
  bool is_free(int32_t block) const { return on_free_list_[block]; }
  bool valid(int32_t block) const { return block >= 0 && block < num_blocks(); }

 private:
  std::vector<int32_t> ref_;
  std::vector<bool> on_free_list_;
  std::vector<int32_t> free_;  // a stack; Allocate() takes the back
};

}  // namespace rocmforge::kv
