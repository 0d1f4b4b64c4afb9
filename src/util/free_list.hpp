// A stack of free memory blocks linked through their first bytes (a block
// whose object is gone holds nothing else): util::Pool keeps one per size
// class, util::BlockCache one for a loop's streams.
#pragma once

namespace async::util {

class FreeList {
 public:
  // A block, or nullptr when none is kept.
  void *pop() noexcept {
    Block *block = top_;
    if (block) top_ = block->next;
    return block;
  }

  // p: a block of at least a pointer's size, its object destroyed.
  void push(void *p) noexcept {
    auto *block = static_cast<Block *>(p);
    block->next = top_;
    top_ = block;
  }

 private:
  struct Block {
    Block *next;
  };

  Block *top_ = nullptr;
};

}  // namespace async::util
