// Content-addressed index of full KV blocks, so a sequence whose prompt starts
// with tokens another sequence already computed reuses those blocks instead of
// recomputing them.
//
// A block's key is a hash chain: Hash(parent_hash, its block_size tokens), the
// parent being the previous block of the same sequence (kRootHash for the
// first). Equal keys therefore mean equal whole prefixes, up to hash
// collisions; to rule those out each entry also stores its tokens and parent
// hash and Find() compares them exactly.
//
// The cache does not own references. It keeps an LRU list of its blocks that
// nobody references ("evictable"): the KV manager parks a cached block here
// when its last reference goes and takes it out when it is reused; Evict()
// forgets the least recently used one when a free block is needed.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace rocmforge::kv {

// The default block hash: 64-bit, mixes every token (splitmix64 finaliser).
uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens);

class PrefixCache {
 public:
  using HashFn = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> tokens);

  // `hash` may be replaced by tests (e.g. one that always collides).
  explicit PrefixCache(int32_t num_blocks, HashFn hash = &HashBlockTokens);

  uint64_t Hash(uint64_t parent_hash, std::span<const int32_t> tokens) const {
    return hash_(parent_hash, tokens);
  }

  // The cached block holding exactly `tokens` after the prefix `parent_hash`,
  // or -1. Does not change LRU order.
  int32_t Find(uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens) const;

  // Indexes `block` (full and computed, referenced by its sequence) under
  // `hash`. Returns false, leaving `block` uncached, when another block already
  // holds this key (same prefix computed twice, or a collision).
  bool Insert(int32_t block, uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens);

  bool Contains(int32_t block) const { return entries_[block].cached; }

  // LRU of unreferenced cached blocks. Park: the block's last reference went
  // (it becomes the most recently used). Unpark: it is referenced again.
  void Park(int32_t block);
  void Unpark(int32_t block);
  bool IsParked(int32_t block) const { return entries_[block].parked; }
  int32_t num_evictable() const { return static_cast<int32_t>(lru_.size()); }
  int32_t num_cached() const { return static_cast<int32_t>(by_hash_.size()); }

  // Forgets the least recently used parked block and returns it (now neither
  // cached nor parked), or -1 when none is parked.
  int32_t Evict();

 private:
  struct Entry {
    bool cached = false;
    bool parked = false;
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;
    std::list<int32_t>::iterator lru_pos;
  };

  HashFn hash_;
  std::vector<Entry> entries_;  // by block id
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::list<int32_t> lru_;  // front = least recently used
};

}  // namespace rocmforge::kv
