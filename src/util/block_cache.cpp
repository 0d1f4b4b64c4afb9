#include "util/block_cache.hpp"

namespace async::util {

BlockCache::~BlockCache() {
  while (void *block = take()) mem_free(block);
}

}  // namespace async::util
