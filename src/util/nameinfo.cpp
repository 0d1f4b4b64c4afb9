#include "util/nameinfo.hpp"

#include <cstring>
#include <new>

#include "util/alloc.hpp"

namespace async::util {

NameInfo *NameInfo::create(const char *host, const char *service) noexcept {
  if (!host) host = "";
  if (!service) service = "";
  std::size_t host_size = std::strlen(host) + 1;
  std::size_t service_size = std::strlen(service) + 1;
  void *p = util::mem_alloc(sizeof(NameInfo) + host_size + service_size);
  if (!p) return nullptr;
  auto *info = new (p) NameInfo(host_size);
  std::memcpy(info->strings(), host, host_size);
  std::memcpy(info->strings() + host_size, service, service_size);
  return info;
}

void NameInfo::destroy(void *info, void *) noexcept {
  if (!info) return;
  static_cast<NameInfo *>(info)->mark_dead();
  util::mem_free(info);
}

}  // namespace async::util
