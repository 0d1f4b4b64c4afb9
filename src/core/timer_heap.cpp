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

std::size_t TimerHeap::hole_to_leaf(std::size_t index) noexcept {
  for (;;) {
    std::size_t first = kArity * index + 1;
    if (first >= size_) return index;
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
    place(index, entries_[child]);
    index = child;
  }
}

TimerHeap::Entry TimerHeap::entry_of(Timer &timer) noexcept { return {timer.deadline_, timer.seq_, &timer}; }

TimerHeap::Entry TimerHeap::top() const noexcept {
  if (!run_head_) return entries_[0];
  Entry run = entry_of(*run_head_);
  return size_ == 0 || less(run, entries_[0]) ? run : entries_[0];
}

bool TimerHeap::push(Timer &timer) noexcept {
  // Held slots are not free: grow before taking one. A holder unholds
  // before re-pushing, so its own push always finds room.
  if (size_ + run_size_ + held_ == capacity_) {
    std::size_t capacity = capacity_ ? capacity_ * 2 : 16;
    auto *entries = static_cast<Entry *>(util::mem_realloc(entries_, capacity * sizeof(Entry)));
    if (!entries) return false;
    entries_ = entries;
    capacity_ = capacity;
  }
  Entry entry = entry_of(timer);
  timer.in_run_ = !run_tail_ || !less(entry, entry_of(*run_tail_));
  if (!timer.in_run_) {
    sift_up(size_++, entry);
    return true;
  }
  timer.run_prev_ = run_tail_;
  timer.run_next_ = nullptr;
  (run_tail_ ? run_tail_->run_next_ : run_head_) = &timer;
  run_tail_ = &timer;
  ++run_size_;
  return true;
}

void TimerHeap::remove(Timer &timer) noexcept {
  if (!timer.in_run_) {
    remove_at(timer.heap_index_);
    return;
  }
  (timer.run_prev_ ? timer.run_prev_->run_next_ : run_head_) = timer.run_next_;
  (timer.run_next_ ? timer.run_next_->run_prev_ : run_tail_) = timer.run_prev_;
  --run_size_;
}

void TimerHeap::remove_at(std::size_t index) noexcept {
  Entry last = entries_[--size_];
  if (index == size_) return;
  // Bottom-up: the last entry is usually among the latest deadlines, so
  // moving the hole to a leaf without comparing against it, then sifting
  // it up (rarely more than a step), saves a comparison per level. Going
  // up from the leaf also covers an entry that belongs above the hole.
  sift_up(hole_to_leaf(index), last);
}

}  // namespace async::core
