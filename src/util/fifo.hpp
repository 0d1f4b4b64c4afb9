// Intrusive singly linked FIFO: items carry their own `T *next`, so
// queueing never allocates. Owners free what they pop.
#pragma once

#include "util/check.hpp"

namespace async::util {

template <class T>
class Fifo {
 public:
  Fifo() = default;
  Fifo(const Fifo &) = delete;
  Fifo &operator=(const Fifo &) = delete;

  bool empty() const noexcept { return !head_; }
  // Iteration runs from front() along next until nullptr.
  T *front() const noexcept { return head_; }

  void push(T *item) noexcept {
    check(!item->next && item != tail_);  // an item queued twice would loop or cut the queue
    if (tail_)
      tail_->next = item;
    else
      head_ = item;
    tail_ = item;
  }

  // The first item, unlinked; nullptr when empty.
  T *pop() noexcept {
    T *item = head_;
    if (item) {
      head_ = item->next;
      if (!head_) tail_ = nullptr;
      item->next = nullptr;
    }
    return item;
  }

 private:
  T *head_ = nullptr;
  T *tail_ = nullptr;
};

}  // namespace async::util
