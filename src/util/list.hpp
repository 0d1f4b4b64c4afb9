// Intrusive doubly linked list: nodes live inside their owners, so linking
// never allocates and unlinking is O(1) from anywhere.
#pragma once

#include "util/check.hpp"

namespace async::util {

struct ListNode {
  ListNode *prev = this;
  ListNode *next = this;

  bool linked() const noexcept { return next != this; }

  void unlink() noexcept {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
};

class List {
 public:
  List() = default;
  List(const List &) = delete;
  List &operator=(const List &) = delete;

  bool empty() const noexcept { return !head_.linked(); }
  ListNode *front() noexcept { return head_.next; }
  // The sentinel: iteration runs from front() until end().
  ListNode *end() noexcept { return &head_; }

  // A node links into one list at a time: linking a linked one would cut
  // its old neighbours off.
  void push_back(ListNode &node) noexcept {
    check(!node.linked());
    node.prev = head_.prev;
    node.next = &head_;
    head_.prev->next = &node;
    head_.prev = &node;
  }

  // Links node right after pos (a node of this list, or end()).
  void insert_after(ListNode &pos, ListNode &node) noexcept {
    check(!node.linked());
    node.prev = &pos;
    node.next = pos.next;
    pos.next->prev = &node;
    pos.next = &node;
  }

  // Moves every node of other to the end of this list.
  void splice(List &other) noexcept {
    while (!other.empty()) {
      ListNode *node = other.front();
      node->unlink();
      push_back(*node);
    }
  }

 private:
  ListNode head_;
};

}  // namespace async::util
