// The library's internal containers and helpers (src/util/), tested
// directly: edge cases the C API reaches only by chance (a ring wrapping
// while it grows, a byte queue consumed in parts, out of memory while
// growing). Linked with the library's objects, like the fuzzers.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {  // cmocka.h declares its functions without C linkage
#include <cmocka.h>
}

#include <climits>
#include <cstring>

#include "util/block_cache.hpp"
#include "util/byte_queue.hpp"
#include "util/container_of.hpp"
#include "util/error_table.hpp"
#include "util/fifo.hpp"
#include "util/free_list.hpp"
#include "util/list.hpp"
#include "util/pool.hpp"
#include "util/ring.hpp"
#include "util/tagged.hpp"

using namespace async::util;

namespace {

// An allocator hook that can be told to fail.
bool g_fail_allocations = false;
void *failing_realloc(void *ptr, size_t size, void *) {
  if (size == 0) {
    std::free(ptr);
    return nullptr;
  }
  return g_fail_allocations ? nullptr : std::realloc(ptr, size);
}

struct FailingAllocator {
  FailingAllocator() { assert_int_equal(set_allocator(failing_realloc, nullptr), 0); }
  ~FailingAllocator() {
    g_fail_allocations = false;
    set_allocator(nullptr, nullptr);
  }
};

// ---- Ring ---------------------------------------------------------------------

void ring_wraps_and_grows_in_order(void **) {
  Ring<int> ring;
  int next_in = 0, next_out = 0;
  // Keep 3 items in a ring of 4 so head runs around several times.
  for (int i = 0; i < 3; ++i) assert_true(ring.push(next_in++));
  for (int round = 0; round < 10; ++round) {
    assert_true(ring.push(next_in++));
    assert_int_equal(ring.pop(), next_out++);
  }
  // Growing while head is mid-array keeps the order.
  for (int i = 0; i < 20; ++i) assert_true(ring.push(next_in++));
  assert_int_equal(ring.size(), 23);
  while (!ring.empty()) assert_int_equal(ring.pop(), next_out++);
  assert_int_equal(next_out, next_in);
}

void ring_reserve_makes_pushes_infallible(void **) {
  FailingAllocator hook;
  {
    Ring<int> ring;
    assert_true(ring.reserve(5));
    g_fail_allocations = true;
    for (int i = 0; i < 5; ++i) assert_true(ring.push(i));
    for (int i = 0; i < 8 - 5; ++i) assert_true(ring.push(100 + i));  // capacity was rounded to 8
    // Full: more needs memory, and fails without changing the ring.
    assert_false(ring.reserve(1));
    assert_false(ring.push(999));
    assert_int_equal(ring.size(), 8);
    assert_int_equal(ring.pop(), 0);
    g_fail_allocations = false;
  }
}

// ---- Fifo ---------------------------------------------------------------------

struct Item {
  Item *next = nullptr;
  int value = 0;
};

void fifo_keeps_order_and_reuses_items(void **) {
  Fifo<Item> fifo;
  assert_true(fifo.empty());
  assert_null(fifo.pop());  // an empty pop is nullptr, not a crash
  Item items[4];
  for (int i = 0; i < 4; ++i) {
    items[i].value = i;
    fifo.push(&items[i]);
  }
  int seen = 0;
  for (Item *it = fifo.front(); it; it = it->next) assert_int_equal(it->value, seen++);
  assert_int_equal(seen, 4);
  assert_ptr_equal(fifo.pop(), &items[0]);
  assert_null(items[0].next);  // popped items are unlinked and may be queued again
  fifo.push(&items[0]);
  for (int expect : {1, 2, 3, 0}) assert_int_equal(fifo.pop()->value, expect);
  assert_true(fifo.empty());
  assert_null(fifo.front());
  // Emptied, it works from the start again.
  fifo.push(&items[2]);
  assert_ptr_equal(fifo.pop(), &items[2]);
  assert_null(fifo.pop());
}

// ---- ByteQueue ----------------------------------------------------------------

const std::uint8_t *bytes_of(const char *s) { return reinterpret_cast<const std::uint8_t *>(s); }

void byte_queue_consumes_in_parts(void **) {
  ByteQueue q;
  assert_true(q.empty());
  assert_true(q.append(bytes_of("hello "), 6));
  assert_true(q.append(bytes_of("world"), 5));
  assert_int_equal(q.size(), 11);
  assert_memory_equal(q.data(), "hello world", 11);
  q.consume(0);
  assert_int_equal(q.size(), 11);
  q.consume(6);
  assert_int_equal(q.size(), 5);
  assert_memory_equal(q.data(), "world", 5);
  assert_true(q.append(bytes_of("!"), 1));
  assert_memory_equal(q.data(), "world!", 6);
  q.consume(6);
  assert_true(q.empty());
  assert_true(q.append(bytes_of("x"), 0));  // nothing appended
  assert_true(q.empty());
}

void byte_queue_grows_keeping_bytes(void **) {
  ByteQueue q;
  std::uint8_t block[1000];
  for (int i = 0; i < 50; ++i) {
    std::memset(block, i, sizeof block);
    assert_true(q.append(block, sizeof block));
  }
  assert_int_equal(q.size(), 50000);
  for (int i = 0; i < 50; ++i) {
    assert_int_equal(q.data()[i * 1000], i);
    assert_int_equal(q.data()[i * 1000 + 999], i);
  }
  q.consume(49999);
  assert_int_equal(q.size(), 1);
  assert_int_equal(q.data()[0], 49);
}

void byte_queue_clear_keeps_storage_release_frees(void **) {
  ByteQueue q;
  assert_true(q.append(bytes_of("abc"), 3));
  const std::uint8_t *storage = q.data();
  q.clear();
  assert_true(q.empty());
  assert_true(q.append(bytes_of("de"), 2));
  assert_ptr_equal(q.data(), storage);  // reused, not reallocated
  assert_memory_equal(q.data(), "de", 2);
  q.release();
  assert_true(q.empty());
  assert_null(q.data());
  assert_true(q.append(bytes_of("f"), 1));
  assert_memory_equal(q.data(), "f", 1);
}

void byte_queue_out_of_memory_leaves_it_unchanged(void **) {
  FailingAllocator hook;
  {
    ByteQueue q;
    assert_true(q.append(bytes_of("keep"), 4));
    g_fail_allocations = true;
    std::uint8_t big[300] = {};
    assert_false(q.append(big, sizeof big));  // needs more than the first 256 bytes
    assert_int_equal(q.size(), 4);
    assert_memory_equal(q.data(), "keep", 4);
    assert_true(q.append(bytes_of("!"), 1));  // within capacity: no allocation
    assert_memory_equal(q.data(), "keep!", 5);
    assert_false(q.append(big, SIZE_MAX));  // size overflow refused
    g_fail_allocations = false;
  }
}

// ---- Pool ---------------------------------------------------------------------

// Live allocations through the hook, and allocation calls.
long g_live_blocks = 0;
long g_allocations = 0;
void *counting_realloc(void *ptr, size_t size, void *) {
  if (size == 0) {
    if (ptr) --g_live_blocks;
    std::free(ptr);
    return nullptr;
  }
  if (!ptr) {
    if (g_fail_allocations) return nullptr;
    ++g_live_blocks;
    ++g_allocations;
  }
  return std::realloc(ptr, size);
}

struct CountingAllocator {
  CountingAllocator() {
    g_live_blocks = 0;
    g_allocations = 0;
    assert_int_equal(set_allocator(counting_realloc, nullptr), 0);
  }
  ~CountingAllocator() {
    g_fail_allocations = false;
    set_allocator(nullptr, nullptr);
  }
};

struct Record {
  explicit Record(int v) : value(v) {}
  int value;
  char payload[100];
};

void pool_reuses_blocks_and_frees_everything_with_itself(void **) {
  CountingAllocator hook;
  {
    Pool pool;
    Record *a = pool.make<Record>(1);
    assert_non_null(a);
    assert_int_equal(g_allocations, 1);  // the first record of a size allocates
    assert_int_equal(reinterpret_cast<std::uintptr_t>(a) % 16, 0);
    Record *more[3];
    for (int i = 0; i < 3; ++i) assert_non_null(more[i] = pool.make<Record>(2 + i));
    pool.destroy(a);
    Record *b = pool.make<Record>(9);
    assert_non_null(b);
    assert_int_equal(b->value, 9);
    for (auto *r : more) pool.destroy(r);
    pool.destroy(b);
    // Sizes above the largest class are plain allocations, freed at once.
    void *big = pool.alloc(4096);
    assert_non_null(big);
    long live = g_live_blocks;
    pool.free(big, 4096);
    assert_int_equal(g_live_blocks, live - 1);
#ifndef ASYNC_POOL_PASSTHROUGH
    assert_ptr_equal(b, a);  // the freed block came back
    assert_int_equal(g_allocations, 2);  // one slab of four records, the big block
#endif
  }
  assert_int_equal(g_live_blocks, 0);
}

void pool_out_of_memory_still_serves_free_blocks(void **) {
  CountingAllocator hook;
  {
    Pool pool;
    g_fail_allocations = true;
    assert_null(pool.make<Record>(1));
    assert_null(pool.alloc(4096));
    g_fail_allocations = false;
    Record *a = pool.make<Record>(1);
    assert_non_null(a);
    g_fail_allocations = true;
#ifndef ASYNC_POOL_PASSTHROUGH
    // The rest of a's slab needs no allocation; the fifth record does.
    Record *more[3];
    for (int i = 0; i < 3; ++i) assert_non_null(more[i] = pool.make<Record>(2 + i));
    assert_null(pool.make<Record>(5));
    for (auto *r : more) pool.destroy(r);
#endif
    pool.destroy(a);
    g_fail_allocations = false;
  }
  assert_int_equal(g_live_blocks, 0);
}

// ---- FreeList -------------------------------------------------------------------

void free_list_pops_last_pushed_first(void **) {
  FreeList list;
  assert_null(list.pop());
  alignas(void *) unsigned char a[16], b[16];
  list.push(a);
  list.push(b);
  assert_ptr_equal(list.pop(), b);
  assert_ptr_equal(list.pop(), a);
  assert_null(list.pop());
  list.push(a);  // usable again once empty
  assert_ptr_equal(list.pop(), a);
  assert_null(list.pop());
}

// ---- BlockCache -----------------------------------------------------------------

void block_cache_keeps_up_to_its_limit_and_frees_the_rest(void **) {
  CountingAllocator hook;
  {
    BlockCache cache;
    assert_null(cache.take());
    constexpr std::size_t kBlocks = BlockCache::kMaxBlocks + 2;
    void *blocks[kBlocks];
    for (auto &b : blocks) assert_non_null(b = mem_alloc(sizeof(Record)));
    for (auto *b : blocks) cache.keep(b);
#ifndef ASYNC_POOL_PASSTHROUGH
    assert_int_equal(g_live_blocks, BlockCache::kMaxBlocks);  // the two past the limit went back
    void *again = cache.take();
    assert_ptr_equal(again, blocks[BlockCache::kMaxBlocks - 1]);  // the last one kept comes first
    mem_free(again);                                              // a kept block frees on its own too
    assert_int_equal(g_allocations, kBlocks);
#else
    assert_int_equal(g_live_blocks, 0);
#endif
  }
  assert_int_equal(g_live_blocks, 0);  // the rest with the cache
}

// ---- List, container_of, tags -------------------------------------------------

struct Node {
  int value;
  ListNode link;
};

void list_links_and_finds_owners(void **) {
  List list, other;
  Node a{1, {}}, b{2, {}}, c{3, {}};
  list.push_back(a.link);
  list.push_back(c.link);
  list.insert_after(a.link, b.link);
  other.splice(list);
  assert_true(list.empty());
  int expect = 1;
  for (ListNode *n = other.front(); n != other.end(); n = n->next)
    assert_int_equal(container_of(n, &Node::link)->value, expect++);
  assert_int_equal(expect, 4);
  b.link.unlink();
  assert_false(b.link.linked());
  list.push_back(b.link);  // unlinked, it may join another list
  assert_ptr_equal(container_of(list.front(), &Node::link), &b);
}

struct Base {
  long x;
};
struct TaggedThing : Tagged<0x54455354> {
  long payload;
  ListNode link;
};
struct TagNotFirst : Base, Tagged<0x42414421> {
  long payload;
};

void tag_word_sits_first_and_dies(void **) {
  static_assert(TagWord::first_in<TaggedThing>());
  static_assert(!TagWord::first_in<TagNotFirst>());
  TaggedThing t;
  assert_int_equal(TagWord::tag_at(&t), 0x54455354);
  assert_int_equal(TaggedThing::kTag, 0x54455354);
  assert_ptr_equal(container_of(&t.link, &TaggedThing::link), &t);  // not standard-layout
  t.mark_dead();
  assert_int_equal(TagWord::tag_at(&t), TagWord::kDeadTag);
}

// ---- error table --------------------------------------------------------------

void error_table_finds_every_code_and_nothing_else(void **) {
  for (const ErrorInfo &e : kErrors) assert_ptr_equal(find_error(e.code), &e);
  assert_string_equal(find_error(ASYNC_EACCES)->name, "ASYNC_EACCES");
  for (int code : {1, -static_cast<int>(std::size(kErrors)), INT_MIN, INT_MAX, int{ASYNC_ERROR_FORCE32}})
    assert_null(find_error(code));
  assert_string_equal(error_message(ASYNC_EPIPE), "broken pipe");
  assert_string_equal(error_message(1), "unknown error");
  assert_string_equal(error_name(1), "ASYNC_UNKNOWN");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ring_wraps_and_grows_in_order),
      cmocka_unit_test(ring_reserve_makes_pushes_infallible),
      cmocka_unit_test(fifo_keeps_order_and_reuses_items),
      cmocka_unit_test(byte_queue_consumes_in_parts),
      cmocka_unit_test(byte_queue_grows_keeping_bytes),
      cmocka_unit_test(byte_queue_clear_keeps_storage_release_frees),
      cmocka_unit_test(byte_queue_out_of_memory_leaves_it_unchanged),
      cmocka_unit_test(pool_reuses_blocks_and_frees_everything_with_itself),
      cmocka_unit_test(pool_out_of_memory_still_serves_free_blocks),
      cmocka_unit_test(free_list_pops_last_pushed_first),
      cmocka_unit_test(block_cache_keeps_up_to_its_limit_and_frees_the_rest),
      cmocka_unit_test(list_links_and_finds_owners),
      cmocka_unit_test(tag_word_sits_first_and_dies),
      cmocka_unit_test(error_table_finds_every_code_and_nothing_else),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
