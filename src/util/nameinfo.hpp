// The result of async_getnameinfo(): a host and a service string in one
// allocation, released by destroy() (the future's value destructor).
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/tagged.hpp"

namespace async::util {

class NameInfo : public util::Tagged<0x4e414d45> {  // "NAME"
 public:
  // Copies host and service (NULL is taken as ""); nullptr when out of memory.
  static NameInfo *create(const char *host, const char *service) noexcept;
  // Matches async_destroy_fn (context unused).
  static void destroy(void *info, void *context = nullptr) noexcept;

  const char *host() const noexcept { return strings(); }
  const char *service() const noexcept { return strings() + service_offset_; }

 private:
  explicit NameInfo(std::size_t service_offset) noexcept : service_offset_(service_offset) {}
  char *strings() const noexcept { return reinterpret_cast<char *>(const_cast<NameInfo *>(this) + 1); }

  std::size_t service_offset_;
};

}  // namespace async::util
