#include "engine/kv/block_pool.h"

#include <cassert>

namespace rocmforge::kv {

BlockPool::BlockPool(int32_t num_blocks)
    : ref_(num_blocks > 0 ? num_blocks : 0, 0), on_free_list_(ref_.size(), true) {
  // Pushed in reverse so that a fresh pool hands out 0, 1, 2, ... in order,
  // which keeps test expectations and debug output readable.
  free_.reserve(ref_.size());
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockPool::Allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  on_free_list_[b] = false;
  ref_[b] = 1;
  return b;
}

void BlockPool::Ref(int32_t block) {
  assert(valid(block) && !on_free_list_[block]);
  ++ref_[block];
}

int32_t BlockPool::Unref(int32_t block) {
  assert(valid(block) && ref_[block] > 0);
  return --ref_[block];
}

void BlockPool::Release(int32_t block) {
  assert(valid(block) && ref_[block] == 0 && !on_free_list_[block]);
  on_free_list_[block] = true;
  free_.push_back(block);
}

}  // namespace rocmforge::kv
