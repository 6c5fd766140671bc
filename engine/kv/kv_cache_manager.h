// Paged KV cache bookkeeping for the scheduler: one BlockPool, a BlockTable
// per sequence and (optionally) the PrefixCache, behind the few calls the
// scheduler needs (how many blocks N more tokens take, reserve them, reuse a
// cached prompt prefix, register computed blocks, free a sequence).
//
// Block life cycle: Allocate (free list first, else evict the least recently
// used unreferenced cached block) -> written by its sequence -> once full and
// computed, registered in the prefix cache (read-only from then on, shareable)
// -> when no sequence references it: back on the free list if uncached, else
// parked in the cache's LRU until reused or evicted.
// Not thread-safe; the engine loop owns it.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/kv/prefix_cache.h"

namespace rocmforge::kv {

class KvCacheManager {
 public:
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_cache,
                 PrefixCache::HashFn hash = &HashBlockTokens);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return pool_.num_blocks(); }
  bool prefix_cache_enabled() const { return prefix_enabled_; }
  // Blocks an allocation can get now: free ones plus evictable cached ones.
  int32_t num_free_blocks() const { return pool_.num_free() + cache_.num_evictable(); }
  int32_t num_cached_blocks() const { return cache_.num_cached(); }
  int32_t ref_count(int32_t block) const { return pool_.ref_count(block); }

  bool Has(uint64_t seq) const { return tables_.count(seq) != 0; }

  // Starts `seq`'s block table. With the prefix cache on, reuses cached blocks
  // for the longest run of whole leading blocks of `tokens`, but never all of
  // `tokens`: at least the last token is left to compute (its logits are
  // needed). Returns the number of tokens the reused blocks hold.
  int32_t Open(uint64_t seq, std::span<const int32_t> tokens);

  // Longest cached prefix Open() would reuse, without taking it.
  int32_t PeekCachedPrefix(std::span<const int32_t> tokens) const;

  // More blocks `seq` needs so that its table covers `total_tokens` positions.
  int32_t BlocksNeeded(uint64_t seq, int32_t total_tokens) const;
  // Positions `seq`'s table could cover if it took every block available now.
  int32_t MaxTokens(uint64_t seq) const;

  // Grows the table to cover `total_tokens`. All or nothing: false and no
  // change when not enough blocks are available.
  bool Reserve(uint64_t seq, int32_t total_tokens);

  // Registers `seq`'s blocks that are full and whose tokens are all computed
  // (`tokens` is the sequence's full token list, `num_computed` how many of
  // them have K/V in the cache). No-op with the cache off.
  void CommitComputed(uint64_t seq, std::span<const int32_t> tokens, int32_t num_computed);

  // Drops the sequence and its references. Safe for unknown ids.
  void Close(uint64_t seq);

  // The block ids of `seq` (empty for an unknown id).
  const std::vector<int32_t>& block_table(uint64_t seq) const;

 private:
  int32_t AllocateBlock();       // -1 when nothing is free or evictable
  void AcquireCached(int32_t b);  // reference a cached block (maybe parked)
  void ReleaseBlock(int32_t b);

  int32_t block_size_;
  bool prefix_enabled_;
  BlockPool pool_;
  PrefixCache cache_;
  std::unordered_map<uint64_t, BlockTable> tables_;
};

}  // namespace rocmforge::kv
