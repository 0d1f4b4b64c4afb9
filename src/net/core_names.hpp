// The core types the transports' headers name, declared once: the
// transports live in async::net and use core's Loop and Future by their
// short names.
#pragma once

namespace async::core {
class Loop;
class Future;
}  // namespace async::core

namespace async::net {
using core::Future;
using core::Loop;
}  // namespace async::net
