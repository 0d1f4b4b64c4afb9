#include "core/timer_heap.hpp"

#include "core/timer.hpp"
#include "util/alloc.hpp"

namespace async::core {

TimerHeap::~TimerHeap() { util::mem_free(entries_); }

void TimerHeap::place(std::size_t index, const Entry &entry) noexcept {
  entries_[index] = entry;
  entry.timer->heap_index_ = index;
}

void TimerHeap::sift_up(std::size_t index, Entry entry) noexcept {
  while (index > 0) {
    std::size_t parent = (index - 1) / kArity;
    if (!less(entry, entries_[parent])) break;
    place(index, entries_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerHeap::sift_down(std::size_t index, Entry entry) noexcept {
  for (;;) {
    std::size_t first = kArity * index + 1;
    if (first >= size_) break;
    std::size_t child = first;
    if (first + kArity <= size_) {
      // All four children: a two-round tournament, the first round's
      // comparisons independent of each other.
      const Entry *c = entries_ + first;
      std::size_t low = less(c[1], c[0]) ? 1 : 0;
      std::size_t high = less(c[3], c[2]) ? 3 : 2;
      child += less(c[high], c[low]) ? high : low;
    } else {
      for (std::size_t c = first + 1; c < size_; ++c)
        if (less(entries_[c], entries_[child])) child = c;
    }
    if (!less(entries_[child], entry)) break;
    place(index, entries_[child]);
    index = child;
  }
  place(index, entry);
}

bool TimerHeap::push(const Entry &entry) noexcept {
  // Held slots are not free: grow before taking one. A holder unholds
  // before re-pushing, so its own push always finds room.
  if (size_ + held_ == capacity_) {
    std::size_t capacity = capacity_ ? capacity_ * 2 : 16;
    auto *entries = static_cast<Entry *>(util::mem_realloc(entries_, capacity * sizeof(Entry)));
    if (!entries) return false;
    entries_ = entries;
    capacity_ = capacity;
  }
  sift_up(size_++, entry);
  return true;
}

void TimerHeap::remove(std::size_t index) noexcept {
  Entry last = entries_[--size_];
  if (index == size_) return;
  // The moved entry may belong above or below the hole.
  if (index > 0 && less(last, entries_[(index - 1) / kArity]))
    sift_up(index, last);
  else
    sift_down(index, last);
}

}  // namespace async::core
