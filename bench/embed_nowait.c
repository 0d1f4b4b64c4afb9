/*
 * One ASYNC_RUN_NOWAIT iteration driven by a host: `fd` waits on
 * async_loop_fd() with poll() before each run (what an embedding host
 * does), `plain` calls run(NOWAIT) back to back (the iteration alone).
 * Each iteration runs one callback that queues the next, so the fd is
 * readable again after every run. bench/instr.sh counts instructions.
 *
 *   embed_nowait fd|plain N
 */
#include <async.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long remaining;

static void step(async_loop *loop, void *ud) {
  if (--remaining > 0) async_loop_call_soon(loop, step, ud);
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "fd") && strcmp(argv[1], "plain"))) {
    fprintf(stderr, "usage: embed_nowait fd|plain N\n");
    return 2;
  }
  remaining = atol(argv[2]);
  async_loop *loop;
  if (remaining <= 0 || async_loop_new(&loop) != 0) return 1;
  int use_fd = strcmp(argv[1], "fd") == 0, fd = -1;
  if (use_fd && async_loop_fd(&fd, loop) != 0) return 1;
  async_loop_call_soon(loop, step, NULL);
  while (remaining > 0) {
    if (use_fd) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, -1) < 0) return 1;
    }
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
  }
  async_loop_run(loop, ASYNC_RUN_DEFAULT);
  return async_loop_free(loop) == 0 ? 0 : 1;
}
