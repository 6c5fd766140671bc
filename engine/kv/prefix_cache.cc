#include "engine/kv/prefix_cache.h"

#include <algorithm>
#include <cassert>

namespace rocmforge::kv {
namespace {

uint64_t Mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  uint64_t h = Mix64(parent_hash ^ (0x9e3779b97f4a7c15ull * (tokens.size() + 1)));
  for (int32_t t : tokens) h = Mix64(h ^ static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ull;
  return h;
}

PrefixCache::PrefixCache(int32_t num_blocks, HashFn hash)
    : hash_(hash), entries_(num_blocks > 0 ? num_blocks : 0) {}

int32_t PrefixCache::Find(uint64_t hash, uint64_t parent_hash,
                          std::span<const int32_t> tokens) const {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const Entry& e = entries_[it->second];
  // The hash only narrows the search: a different prefix that collides must
  // not hand out someone else's K/V.
  if (e.parent_hash != parent_hash || e.tokens.size() != tokens.size() ||
      !std::equal(tokens.begin(), tokens.end(), e.tokens.begin())) {
    return -1;
  }
  return it->second;
}

bool PrefixCache::Insert(int32_t block, uint64_t hash, uint64_t parent_hash,
                         std::span<const int32_t> tokens) {
  Entry& e = entries_[block];
  if (e.cached) return false;
  if (!by_hash_.emplace(hash, block).second) return false;
  e.cached = true;
  e.hash = hash;
  e.parent_hash = parent_hash;
  e.tokens.assign(tokens.begin(), tokens.end());
  return true;
}

void PrefixCache::Park(int32_t block) {
  Entry& e = entries_[block];
  assert(e.cached && !e.parked);
  e.parked = true;
  e.lru_pos = lru_.insert(lru_.end(), block);
}

void PrefixCache::Unpark(int32_t block) {
  Entry& e = entries_[block];
  if (!e.parked) return;
  lru_.erase(e.lru_pos);
  e.parked = false;
}

int32_t PrefixCache::Evict() {
  if (lru_.empty()) return -1;
  const int32_t block = lru_.front();
  lru_.pop_front();
  Entry& e = entries_[block];
  by_hash_.erase(e.hash);
  e = Entry{};
  return block;
}

}  // namespace rocmforge::kv
