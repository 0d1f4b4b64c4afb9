// async_loop_walk and async_loop_shutdown: every object a user of a loop
// holds, kind by kind, from the loop's registry lists (core/loop.hpp) and
// through each server for its accepted streams. Here, not in core, because
// it knows every kind, the net ones included.
#pragma once

#include <async/handle.h>
#include <async/loop.h>

#include "net/core_names.hpp"

namespace async::net {

// Nested visits (Loop::visit) each needs: a server's streams are visited
// inside the visit of the servers.
inline constexpr int kObjectVisits = 2;

// The number of fn calls made.
int walk_objects(Loop &loop, async_walk_fn fn, void *userdata) noexcept;
// Stops reconnectors, cancels futures, aborts streams and datagrams, closes
// handles with close_cb (async/loop.h).
void shutdown_objects(Loop &loop, async_close_fn close_cb) noexcept;

}  // namespace async::net
