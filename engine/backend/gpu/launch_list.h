// What a graph step records per op (GpuBackend::Enqueue): the op's signature
// bytes (SigBuf) and its launch closure (LaunchList). A decode step records
// ~360 ops and is almost always replayed from a cached graph, so neither is
// used beyond the signature compare; both are built without allocating once
// warm. (With a std::string per signature and a std::function per closure --
// every capture over 16 bytes allocates -- recording a Llama-3-8B step took
// 65-180 us of host time on the H100 machine, all of it between the previous
// token's result and the next graph launch, while the device idles.)
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace rocmforge {

// A launch's signature: a tag, then the raw bytes of its arguments, on the
// stack. Appending past kCapacity is a programming error (aborts).
class SigBuf {
 public:
  static constexpr size_t kCapacity = 512;

  template <typename... A>
  static SigBuf Of(int tag, const A&... a) {
    static_assert(sizeof(int) + (0 + ... + sizeof(A)) <= kCapacity, "signature too long");
    SigBuf s;
    s.Append(&tag, sizeof(tag));
    (s.Append(&a, sizeof(a)), ...);
    return s;
  }

  void Append(const void* p, size_t n) {
    if (size_ + n > kCapacity) std::abort();  // a signature of > 512 bytes: raise kCapacity
    std::memcpy(bytes_ + size_, p, n);
    size_ += n;
  }
  SigBuf& operator+=(const SigBuf& o) {
    Append(o.bytes_, o.size_);
    return *this;
  }
  friend SigBuf operator+(SigBuf a, const SigBuf& b) { return a += b; }

  std::string_view view() const { return {bytes_, size_}; }
  bool empty() const { return size_ == 0; }
  // The first op's tag (0 if empty).
  int tag() const {
    int t = 0;
    if (size_ >= sizeof(t)) std::memcpy(&t, bytes_, sizeof(t));
    return t;
  }

 private:
  char bytes_[kCapacity];
  size_t size_ = 0;
};

// Closures run later in order, stored in chunks that are kept from one
// Clear to the next (no allocation per Add once the chunks exist; closures
// never move, so any closure type works).
class LaunchList {
 public:
  LaunchList() = default;
  LaunchList(const LaunchList&) = delete;
  LaunchList& operator=(const LaunchList&) = delete;
  ~LaunchList() { Clear(); }

  template <typename F>
  void Add(F&& f) {
    using Fn = std::decay_t<F>;
    static_assert(alignof(Fn) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "over-aligned closure");
    void* p = Allocate(sizeof(Fn), alignof(Fn));
    ::new (p) Fn(std::forward<F>(f));
    entries_.push_back(Entry{&RunAs<Fn>, std::is_trivially_destructible_v<Fn> ? nullptr : &DestroyAs<Fn>, p});
  }
  // Runs every closure in the order added.
  void RunAll() const {
    for (const Entry& e : entries_) e.run(e.p);
  }
  // Destroys the closures; keeps the chunks.
  void Clear() {
    for (const Entry& e : entries_) {
      if (e.destroy != nullptr) e.destroy(e.p);
    }
    entries_.clear();
    chunk_ = 0;
    used_ = 0;
  }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  void swap(LaunchList& o) noexcept {
    entries_.swap(o.entries_);
    chunks_.swap(o.chunks_);
    std::swap(chunk_, o.chunk_);
    std::swap(used_, o.used_);
  }

 private:
  static constexpr size_t kChunkBytes = 16384;
  struct Entry {
    void (*run)(void*);
    void (*destroy)(void*);
    void* p;
  };
  struct Chunk {
    std::unique_ptr<std::byte[]> bytes;
    size_t size;
  };
  template <typename Fn>
  static void RunAs(void* p) {
    (*static_cast<Fn*>(p))();
  }
  template <typename Fn>
  static void DestroyAs(void* p) {
    static_cast<Fn*>(p)->~Fn();
  }
  // size bytes at `align` in the current chunk, else the next one that fits
  // (a new one inserted where none does).
  void* Allocate(size_t size, size_t align) {
    for (;;) {
      if (chunk_ < chunks_.size()) {
        const size_t at = (used_ + align - 1) / align * align;
        if (at + size <= chunks_[chunk_].size) {
          used_ = at + size;
          return chunks_[chunk_].bytes.get() + at;
        }
        if (used_ > 0) {  // the current chunk is full: on to the next
          ++chunk_;
          used_ = 0;
          continue;
        }
      }
      // No chunk here, or this empty one is too small for the closure.
      const size_t bytes = size > kChunkBytes ? size : kChunkBytes;
      chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(chunk_),
                     Chunk{std::make_unique<std::byte[]>(bytes), bytes});
      used_ = 0;
    }
  }

  std::vector<Entry> entries_;
  std::vector<Chunk> chunks_;
  size_t chunk_ = 0;  // the chunk Add fills
  size_t used_ = 0;   // bytes of it taken
};

}  // namespace rocmforge
