// Where src/api wires TLS (src/tls) into connects and servers (src/net),
// which never see it: a context becomes a net::Upgrade.
#pragma once

#include <async/connect.h>

#include "net/upgrade.hpp"

namespace async::api {

// options.tls as a connector's upgrade (none for NULL): 0, or
// ASYNC_EINVAL for what is not a client context.
int connect_upgrade(net::Upgrade &out, const async_connect_options &options) noexcept;

}  // namespace async::api
