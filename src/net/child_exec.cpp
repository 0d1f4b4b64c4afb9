#include "net/child_exec.hpp"

#include <async/error.h>
#include <async/process.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/sys_error.hpp"

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

// pidfd_open() (Linux 5.3) answers for the pidfd calls the library makes.
// Asked first because CLONE_PIDFD alone can succeed where the rest is
// missing: valgrind runs clone as a fork and knows no other pidfd call.
bool pidfds_supported() noexcept {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (fd < 0) return errno != ENOSYS;
  ::close(fd);
  return true;
}

}  // namespace

struct ChildExec::Shared {
  const Plan *plan;
  sigset_t mask;  // the child's
  int report_fd;  // the error pipe's write end (close-on-exec)
};

// No sanitizer: this runs on a borrowed stack in a process that shares the
// parent's memory, and never returns (exec or _exit), so shadow memory
// poisoned for its frames would stay behind for the parent.
__attribute__((no_sanitize("address", "undefined"))) int ChildExec::child_main(void *shared_plan) noexcept {
  auto *shared = static_cast<Shared *>(shared_plan);
  const Plan &plan = *shared->plan;
  // Above 2, where the standard streams set up below cannot replace it.
  int report = shared->report_fd > 2 ? shared->report_fd : ::fcntl(shared->report_fd, F_DUPFD_CLOEXEC, 3);
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
  // Raw system calls: glibc's setgid and setuid would make every thread of
  // the process (the parent's, whose memory this is) change ids too.
  if (plan.flags & ASYNC_PROCESS_SET_GID) {
    // Supplementary groups would keep the parent's rights; only root may
    // drop them (EPERM otherwise: then there is nothing to drop but its own).
    if (::syscall(SYS_setgroups, 0, nullptr) < 0 && errno != EPERM) goto fail;
    if (::syscall(SYS_setgid, plan.gid) < 0) goto fail;
  }
  if ((plan.flags & ASYNC_PROCESS_SET_UID) && ::syscall(SYS_setuid, plan.uid) < 0) goto fail;
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
  if (report < 0) goto fail;
  // Every other fd, close-on-exec or not: the child gets what it was given
  // (the error pipe goes with the exec).
  if ((report > 3 && ::close_range(3, static_cast<unsigned>(report) - 1, 0) < 0) ||
      ::close_range(static_cast<unsigned>(report) + 1, ~0U, 0) < 0) {
    for (int fd = 3; fd < static_cast<int>(::sysconf(_SC_OPEN_MAX)); ++fd)
      if (fd != report) ::close(fd);
  }
  if (plan.cwd && ::chdir(plan.cwd) < 0) goto fail;
  if (::sigprocmask(SIG_SETMASK, &shared->mask, nullptr) < 0) goto fail;
  {
    char *const *argv = const_cast<char *const *>(plan.argv);
    char *const *envp = const_cast<char *const *>(plan.envp);
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
  int err = errno;
  ::write(report, &err, sizeof err);
  ::_exit(127);
}

int ChildExec::spawn(pid_t *pid, int *pidfd, const Plan &plan) noexcept {
  if (!pidfds_supported()) return ASYNC_ENOTSUP;
  // The child reports a failed step through a close-on-exec pipe: EOF means
  // it exec'd. (Memory shared through CLONE_VM would do under CLONE_VFORK,
  // but not where clone is turned into a fork, as under valgrind.)
  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) return util::from_errno(errno);
  Shared shared{&plan, {}, report[1]};
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
  // SIGCHLD as the exit signal makes it an ordinary child (waitid needs no
  // __WCLONE); the application's disposition decides what the signal does.
  // CLONE_PIDFD (Linux 5.2) gives the pidfd with the pid: a child that
  // exits at once is reaped by the kernel itself when the application sets
  // SIGCHLD to SIG_IGN, and pidfd_open() after the fact would find no pid.
  // Kernels that refuse the flag (EINVAL) or ignore it (fd stays -1, as
  // under valgrind) fall back to pidfd_open().
  int fd = -1;
  pid_t child = ::clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &shared, &fd,
                        nullptr, nullptr);
  if (child < 0 && errno == EINVAL)
    child = ::clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &shared);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(report[1]);
  if (child < 0) {
    ::close(report[0]);
    return util::from_errno(clone_errno);
  }
  int err = 0;
  ssize_t n;
  do n = ::read(report[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  ::close(report[0]);
  // Until reaped the pid stays this child's, so the pidfd cannot name another.
  if (fd < 0) fd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  if (n > 0 || fd < 0) {
    int result = n > 0 ? child_error(err) : errno == ENOSYS ? ASYNC_ENOTSUP : util::from_errno(errno);
    if (n <= 0) ::kill(child, SIGKILL);  // running, but unwatchable
    int code = 0;
    int sig = 0;
    siginfo_t info;
    if (fd >= 0) {
      reap(&code, &sig, fd, child, true);
      ::close(fd);
    } else {
      ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED);
    }
    return result;
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
