/*
 * libasync: an event-loop runtime with asyncio semantics behind a C ABI.
 *
 * Umbrella header: include this one. Every object has its own header under
 * async/. Conventions shared by every function are in async/common.h.
 */
#ifndef ASYNC_H
#define ASYNC_H

/* In reading order (conventions, loop, handles, futures, network), not sorted. */
/* clang-format off */
#include "async/common.h"
#include "async/version.h"
#include "async/error.h"
#include "async/alloc.h"
#include "async/loop.h"
#include "async/handle.h"
#include "async/timer.h"
#include "async/watcher.h"
#include "async/hook.h"
#include "async/signal.h"
#include "async/future.h"
#include "async/executor.h"
#include "async/addr.h"
#include "async/dns.h"
#include "async/stream.h"
#include "async/server.h"
#include "async/connect.h"
#include "async/datagram.h"
#include "async/reader.h"
#include "async/reconnect.h"
#include "async/process.h"
#include "async/layer.h"
#include "async/queue.h"
#include "async/tls.h"
#include "async/socks.h"
/* clang-format on */

#endif
