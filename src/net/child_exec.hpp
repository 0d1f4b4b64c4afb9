// Making a child process: clone(CLONE_VM | CLONE_VFORK), the child's set-up
// and exec with its errors sent back through a close-on-exec pipe, then its
// pidfd. No allocation and no lock is taken between the clone and the exec
// (the child shares the caller's memory until then).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>

namespace async::net {

class ChildExec {
 public:
  // Everything the child reads, prepared by the parent beforehand.
  struct Plan {
    const char *const *argv;
    const char *const *envp;  // never nullptr: the caller's environ by default
    const char *cwd;          // nullptr: the caller's
    const char *path;         // the PATH searched for a bare argv[0]
    int stdio[3];             // the fd the child gets as fd i, or -1 to inherit it
    std::uint32_t flags;      // enum async_process_flags
    uid_t uid;
    gid_t gid;
  };

  // Starts the child and returns once it exec'd or failed to: 0 with *pid
  // and *pidfd (close-on-exec) set, or an ASYNC_E* code with no child left
  // (one that failed to exec is reaped here). ASYNC_ENOTSUP without pidfds
  // (the child is killed and reaped then).
  static int spawn(pid_t *pid, int *pidfd, const Plan &plan) noexcept;

  // waitid(P_PIDFD) of the child, WNOHANG unless block: 1 with the exit
  // code (-1 after a signal) and the signal (0 after an exit) set, 0 while
  // it runs, or an ASYNC_E* code (ASYNC_ESTATE: reaped by someone else).
  static int reap(int *exit_code, int *signal, int pidfd, pid_t pid, bool block) noexcept;

 private:
  struct Shared;
  static int child_main(void *shared_plan) noexcept;
};

}  // namespace async::net
