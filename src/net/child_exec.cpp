#include "net/child_exec.hpp"

#include <async/error.h>
#include <async/process.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/sys_error.hpp"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace async::net {

namespace {

// The child runs on this much of the parent's stack (the parent waits
// meanwhile): a PATH_MAX buffer and a few frames of system calls.
constexpr std::size_t kChildStack = std::size_t{24} * 1024;

// The code a failed exec or set-up step returns (exec(3)'s errors).
int child_error(int err) noexcept {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP: return ASYNC_ENOENT;
    case ENOEXEC: return ASYNC_ENOEXEC;
    default: return util::from_errno(err);
  }
}

}  // namespace

struct ChildExec::Shared {
  const Plan *plan;
  sigset_t mask;  // the child's
  int err;        // errno of the step that failed, written by the child
};

// No sanitizer: this runs on a borrowed stack in a process that shares the
// parent's memory, and never returns (exec or _exit), so shadow memory
// poisoned for its frames would stay behind for the parent.
[[gnu::no_sanitize_address, gnu::no_sanitize_undefined]] int ChildExec::child_main(void *arg) noexcept {
  auto *shared = static_cast<Shared *>(arg);
  const Plan &plan = *shared->plan;
  // Every signal is blocked (the parent did it before the clone): handlers
  // are the parent's code, so they go back to their default before the
  // mask is set. Ignored signals stay ignored, as across exec.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (::sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) {
      sa = {};
      sa.sa_handler = SIG_DFL;
      ::sigaction(sig, &sa, nullptr);
    }
  }
  if ((plan.flags & ASYNC_PROCESS_NEW_SESSION) && ::setsid() < 0) goto fail;
  if ((plan.flags & ASYNC_PROCESS_NEW_GROUP) && ::setpgid(0, 0) < 0) goto fail;
  if (plan.flags & ASYNC_PROCESS_SET_GID) {
    // Supplementary groups would keep the parent's rights; only root may
    // drop them (EPERM otherwise: then there is nothing to drop but its own).
    if (::setgroups(0, nullptr) < 0 && errno != EPERM) goto fail;
    if (::setgid(plan.gid) < 0) goto fail;
  }
  if ((plan.flags & ASYNC_PROCESS_SET_UID) && ::setuid(plan.uid) < 0) goto fail;
  {
    // Each source moves above 2 first, so that one stdio fd given as
    // another (2>&1, or a pipe numbered 0..2) is not overwritten before it
    // is copied.
    int moved[3];
    for (int i = 0; i < 3; ++i) {
      moved[i] = plan.stdio[i] < 0 ? -1 : ::fcntl(plan.stdio[i], F_DUPFD_CLOEXEC, 3);
      if (plan.stdio[i] >= 0 && moved[i] < 0) goto fail;
    }
    for (int i = 0; i < 3; ++i)
      if (moved[i] >= 0 && ::dup2(moved[i], i) < 0) goto fail;
  }
  // Every other fd, close-on-exec or not: the child gets what it was given.
  if (::close_range(3, ~0U, 0) < 0) {
    for (int fd = 3; fd < static_cast<int>(::sysconf(_SC_OPEN_MAX)); ++fd) ::close(fd);
  }
  if (plan.cwd && ::chdir(plan.cwd) < 0) goto fail;
  if (::sigprocmask(SIG_SETMASK, &shared->mask, nullptr) < 0) goto fail;
  {
    auto *argv = const_cast<char *const *>(plan.argv);
    auto *envp = const_cast<char *const *>(plan.envp);
    const char *file = plan.argv[0];
    if (std::strchr(file, '/')) {
      ::execve(file, argv, envp);
      goto fail;
    }
    // PATH as execvp(3) searches it, but without its shell fallback for
    // ENOEXEC: a format the kernel refuses is reported, not guessed at.
    char path[PATH_MAX];
    std::size_t file_len = std::strlen(file);
    bool denied = false;
    for (const char *dir = plan.path;;) {
      const char *end = ::strchrnul(dir, ':');
      auto dir_len = static_cast<std::size_t>(end - dir);
      if (dir_len == 0) dir = ".", dir_len = 1;  // an empty entry is the working directory
      if (dir_len + file_len + 2 <= sizeof path) {
        std::memcpy(path, dir, dir_len);
        path[dir_len] = '/';
        std::memcpy(path + dir_len + 1, file, file_len + 1);
        ::execve(path, argv, envp);
        if (errno == EACCES)
          denied = true;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT)
          goto fail;
      }
      if (*end == '\0') break;
      dir = end + 1;
    }
    errno = denied ? EACCES : ENOENT;
  }
fail:
  shared->err = errno;
  ::_exit(127);
}

int ChildExec::spawn(pid_t *pid, int *pidfd, const Plan &plan) noexcept {
  Shared shared{&plan, {}, 0};
  // No signal handler may run in the child while it shares our memory.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  if (plan.flags & ASYNC_PROCESS_RESET_SIGMASK)
    ::sigemptyset(&shared.mask);
  else
    shared.mask = old;
  alignas(16) unsigned char stack[kChildStack];
  int fd = -1;
  // SIGCHLD as the exit signal makes it an ordinary child (waitid needs no
  // __WCLONE); the application's disposition decides what the signal does.
  pid_t child = ::clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &shared, &fd);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child < 0) return clone_errno == EINVAL || clone_errno == ENOSYS ? ASYNC_ENOTSUP : util::from_errno(clone_errno);
  if (shared.err != 0) {
    int code = 0;
    int sig = 0;
    reap(&code, &sig, fd, child, true);  // it has called _exit already
    ::close(fd);
    return child_error(shared.err);
  }
  *pid = child;
  *pidfd = fd;
  return 0;
}

int ChildExec::reap(int *exit_code, int *signal, int pidfd, pid_t pid, bool block) noexcept {
  siginfo_t info{};
  int options = WEXITED | (block ? 0 : WNOHANG);
  int r;
  do r = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, options);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EINVAL) {  // before Linux 5.4: the exact pid, still ours until reaped
    do r = ::waitid(P_PID, static_cast<id_t>(pid), &info, options);
    while (r < 0 && errno == EINTR);
  }
  if (r < 0) return errno == ECHILD ? ASYNC_ESTATE : util::from_errno(errno);
  if (info.si_pid == 0) return 0;
  if (info.si_code == CLD_EXITED) {
    *exit_code = info.si_status;
    *signal = 0;
  } else {
    *exit_code = -1;
    *signal = info.si_status;
  }
  return 1;
}

}  // namespace async::net
