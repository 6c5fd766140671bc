#include "engine/kv/kv_cache_manager.h"

#include <algorithm>

namespace rocmforge::kv {

KvCacheManager::KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_cache,
                               PrefixCache::HashFn hash)
    : block_size_(block_size > 0 ? block_size : 1),
      prefix_enabled_(enable_prefix_cache),
      pool_(num_blocks),
      cache_(num_blocks, hash) {}

int32_t KvCacheManager::PeekCachedPrefix(std::span<const int32_t> tokens) const {
  if (!prefix_enabled_ || tokens.empty()) return 0;
  // Whole blocks only, and leave at least the last token to compute.
  const int32_t max_blocks = static_cast<int32_t>(tokens.size() - 1) / block_size_;
  uint64_t parent = kRootHash;
  int32_t n = 0;
  for (; n < max_blocks; ++n) {
    const auto chunk = tokens.subspan(static_cast<size_t>(n) * block_size_, block_size_);
    const uint64_t h = cache_.Hash(parent, chunk);
    if (cache_.Find(h, parent, chunk) < 0) break;
    parent = h;
  }
  return n * block_size_;
}

int32_t KvCacheManager::Open(uint64_t seq, std::span<const int32_t> tokens) {
  Close(seq);
  BlockTable& table = tables_[seq];
  if (!prefix_enabled_ || tokens.empty()) return 0;
  const int32_t max_blocks = static_cast<int32_t>(tokens.size() - 1) / block_size_;
  for (int32_t n = 0; n < max_blocks; ++n) {
    const auto chunk = tokens.subspan(static_cast<size_t>(n) * block_size_, block_size_);
    const uint64_t h = cache_.Hash(table.last_hash, chunk);
    const int32_t b = cache_.Find(h, table.last_hash, chunk);
    if (b < 0) break;
    AcquireCached(b);
    table.blocks.push_back(b);
    table.last_hash = h;
    table.num_hashed = n + 1;
  }
  return table.num_hashed * block_size_;
}

int32_t KvCacheManager::BlocksNeeded(uint64_t seq, int32_t total_tokens) const {
  const int32_t want = (std::max(total_tokens, 0) + block_size_ - 1) / block_size_;
  const auto it = tables_.find(seq);
  const int32_t have = it == tables_.end() ? 0 : static_cast<int32_t>(it->second.blocks.size());
  return std::max(want - have, 0);
}

int32_t KvCacheManager::MaxTokens(uint64_t seq) const {
  const auto it = tables_.find(seq);
  const int32_t have = it == tables_.end() ? 0 : static_cast<int32_t>(it->second.blocks.size());
  return (have + num_free_blocks()) * block_size_;
}

bool KvCacheManager::Reserve(uint64_t seq, int32_t total_tokens) {
  const int32_t need = BlocksNeeded(seq, total_tokens);
  if (need > num_free_blocks()) return false;
  BlockTable& table = tables_[seq];
  for (int32_t i = 0; i < need; ++i) table.blocks.push_back(AllocateBlock());
  return true;
}

void KvCacheManager::CommitComputed(uint64_t seq, std::span<const int32_t> tokens,
                                    int32_t num_computed) {
  if (!prefix_enabled_) return;
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  BlockTable& table = it->second;
  const int32_t full = std::min<int32_t>(std::min<int32_t>(num_computed, tokens.size()) / block_size_,
                                         table.blocks.size());
  for (int32_t n = table.num_hashed; n < full; ++n) {
    const auto chunk = tokens.subspan(static_cast<size_t>(n) * block_size_, block_size_);
    const uint64_t h = cache_.Hash(table.last_hash, chunk);
    // A duplicate (the same prefix computed by two sequences at once) stays
    // private to this sequence and is freed with it; the chain goes on
    // either way because the key depends only on content.
    cache_.Insert(table.blocks[n], h, table.last_hash, chunk);
    table.last_hash = h;
    table.num_hashed = n + 1;
  }
}

void KvCacheManager::Close(uint64_t seq) {
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  // Release the tail first so that, among this sequence's blocks, the deepest
  // ones become least recently used and are evicted before the shared roots.
  for (auto b = it->second.blocks.rbegin(); b != it->second.blocks.rend(); ++b) ReleaseBlock(*b);
  tables_.erase(it);
}

const std::vector<int32_t>& KvCacheManager::block_table(uint64_t seq) const {
  static const std::vector<int32_t> kEmpty;
  const auto it = tables_.find(seq);
  return it == tables_.end() ? kEmpty : it->second.blocks;
}

int32_t KvCacheManager::AllocateBlock() {
  int32_t b = pool_.Allocate();
  if (b >= 0) return b;
  b = cache_.Evict();
  if (b < 0) return -1;
  pool_.Ref(b);  // parked (ref 0, off the free list) -> in use
  return b;
}

void KvCacheManager::AcquireCached(int32_t b) {
  cache_.Unpark(b);
  pool_.Ref(b);
}

void KvCacheManager::ReleaseBlock(int32_t b) {
  if (pool_.Unref(b) > 0) return;
  if (cache_.Contains(b)) {
    cache_.Park(b);
  } else {
    pool_.Release(b);
  }
}

}  // namespace rocmforge::kv
