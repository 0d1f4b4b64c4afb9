/**
 * @file
 * @brief async_process: child processes with their standard streams as
 * async_stream transports and their exit as a future, without a SIGCHLD
 * handler and without a thread (asyncio's subprocess transports).
 *
 * How a child is made: clone(CLONE_VM | CLONE_VFORK), Linux's vfork. The
 * child sets itself up (process group or session, gid and uid, standard
 * streams, every other fd closed, working directory, signal handlers back
 * to their default, signal mask) and execs; the caller's thread waits
 * meanwhile, and a failed step reaches it through a close-on-exec pipe, so
 * an exec failure (ASYNC_ENOENT, ASYNC_EACCES, ASYNC_ENOEXEC) is what
 * async_process_spawn() returns: never an exit code 127. The child's pidfd
 * (clone(CLONE_PIDFD), else pidfd_open()) is opened with the child, so a
 * child that exits at once under SIGCHLD set to SIG_IGN is still watched. No thread is started
 * and no signal disposition of the process is touched.
 *
 * Exit: the loop watches the child's pidfd and reaps that child, and only
 * it, with waitid(P_PIDFD): no SIGCHLD handler is ever installed and no
 * waitpid(-1) is made, so the application's other children and its SIGCHLD
 * disposition are its own. The child's exit completes every future of
 * async_process_wait() with an async_process_result (exit code or
 * terminating signal). An application that reaps the child itself
 * (waitpid(-1), SIGCHLD set to SIG_IGN) takes its status: the wait futures
 * then fail with ASYNC_ESTATE.
 *
 * Lifetime: async_process_free() lets go of the object, never of the
 * child: a running child is not signalled, and the loop goes on watching
 * it and reaps it when it exits (no zombie is left). Until every child of
 * the loop has exited and been reaped, the loop has work: a running child
 * keeps async_loop_run(ASYNC_RUN_DEFAULT) going, freed or not, and
 * async_loop_free() returns ASYNC_EBUSY (kill the child, or let it end,
 * and run the loop). Processes are not visited by async_loop_walk() nor
 * ended by async_loop_shutdown().
 *
 * Needs pidfds (Linux 5.3): without them (an older kernel, or valgrind
 * 3.19, which does not know pidfd_open) async_process_spawn() returns
 * ASYNC_ENOTSUP and leaves no child.
 *
 * All functions: the loop's thread only, except the async_process_result
 * accessors (any thread, one result read at a time). With the loop's
 * owner-thread check on (async_loop_set_thread_check()), a call from
 * another thread returns ASYNC_EWRONGTHREAD (NULL for a function returning
 * a pointer) and changes nothing.
 */
#ifndef ASYNC_PROCESS_H
#define ASYNC_PROCESS_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A child process made by async_process_spawn(). */
typedef struct async_process async_process;

/**
 * @brief How a child ended, and what async_process_run() collected: the
 * value of the futures of async_process_wait() and async_process_run(),
 * owned by its future.
 */
typedef struct async_process_result async_process_result;

/** @brief What a standard stream of the child is (async_process_options.stdio_mode). */
enum async_stdio_mode {
  ASYNC_STDIO_INHERIT = 0, /**< the caller's own fd of that number (default) */
  ASYNC_STDIO_NULL = 1,    /**< /dev/null */
  /**
   * A stream to the child: the fd's other end becomes an async_stream of
   * the caller's, driven by stdio_protocol[i] with stdio_userdata[i]. Its
   * transport is a Unix stream socketpair, what libuv's stdio pipes are
   * (ASYNC_STDIO_SOCKETPAIR below, with every property said there): the
   * kernel moves bytes through it for two thirds of a pipe's CPU. It was a
   * pipe(2) until ASYNC_STDIO_FIFO was added: that mode is the pipe, for a
   * child that needs one (it opens /dev/stdin or /dev/stdout, uses tee(2)
   * or vmsplice(2) on the fd, or checks that it is a FIFO).
   */
  ASYNC_STDIO_PIPE = 2,
  ASYNC_STDIO_FD = 3, /**< stdio_fd[i], an fd of the caller's (not taken: it stays open) */
  /**
   * A Unix stream socketpair, whatever ASYNC_STDIO_PIPE may become: the
   * stream is driven by stdio_protocol[i] with stdio_userdata[i], both
   * ways: it also reads what the child writes to that fd (a child's stdin
   * stream gets data_received then), async_stream_write_eof() shuts the
   * socket down for writing, and the stream ends once the child closed its
   * end (exited). A child gone before reading its input ends the writer's
   * stream with ASYNC_EPIPE, or ASYNC_ECONNRESET when it left bytes
   * unread, never with a SIGPIPE. The child sees a socket, not a FIFO:
   * opening /dev/stdin, /dev/stdout or /dev/stderr (/proc/self/fd/N)
   * fails with ENXIO, and tee(2) refuses it; ASYNC_STDIO_FIFO gives one.
   */
  ASYNC_STDIO_SOCKETPAIR = 4,
  /**
   * A pipe(2) (what ASYNC_STDIO_PIPE was before this mode), its other end an
   * async_stream driven by stdio_protocol[i] with stdio_userdata[i]: the
   * child's stdin is a write-only stream that ends once
   * async_stream_write_eof() closed it (or with ASYNC_EPIPE when the child
   * went before reading it all, never with a SIGPIPE); stdout and stderr
   * are read-only. The child's fd is a FIFO, as a shell's pipeline gives:
   * /dev/stdin opens, tee(2) and splice(2) work. Each holds 256 KiB where
   * /proc/sys/fs/pipe-max-size and the user's pipe-user-pages-soft allow
   * (F_SETPIPE_SZ; Linux's default 64 KiB otherwise). The kernel costs
   * more per byte than on a socketpair: it allocates and charges a page
   * for every 4 KiB written (through cat, the caller and cat together
   * spent 0.67-0.78 ms of CPU per MiB, against 0.50-0.61 over socketpairs;
   * bench/run_spawn.sh).
   */
  ASYNC_STDIO_FIFO = 5,
  ASYNC_STDIO_MODE_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a mode */
};

/** @brief async_process_options flags (a bit set; 0: none). */
enum async_process_flags {
  ASYNC_PROCESS_NEW_GROUP = 1,      /**< the child leads a new process group (setpgid(0, 0)) */
  ASYNC_PROCESS_NEW_SESSION = 2,    /**< the child leads a new session (setsid()); not with NEW_GROUP */
  ASYNC_PROCESS_SET_UID = 4,        /**< the child runs as async_process_options.uid */
  ASYNC_PROCESS_SET_GID = 8,        /**< the child runs as async_process_options.gid, with no supplementary group */
  ASYNC_PROCESS_RESET_SIGMASK = 16, /**< the child starts with no signal blocked (else the caller's mask) */
  ASYNC_PROCESS_FLAGS_FORCE32 = 0x7FFFFFFF /**< not a flag: keeps the enum 32 bits wide */
};

/**
 * @brief async_process_spawn() options.
 *
 * size is read as for async_connect_options (async/connect.h): fields size
 * does not cover take their default, a size below the first version's or
 * non-zero fields the library does not know are ASYNC_EINVAL. Every
 * field's default is 0 (NULL), but argv is required. Index i of the
 * stdio arrays is the child's fd i (0 stdin, 1 stdout, 2 stderr). Strings
 * and arrays are read during the call only.
 */
typedef struct async_process_options {
  uint32_t size;  /**< sizeof(async_process_options). */
  uint32_t flags; /**< enum async_process_flags bits; 0 (default): none; unknown bits: ASYNC_EINVAL. */
  /**
   * The program and its arguments, NULL-terminated; argv[0] is the program:
   * a path if it has a '/', else looked up in the PATH of the caller's
   * environment (not envp's; "/bin:/usr/bin" without one). Required.
   */
  const char *const *argv;
  const char *const *envp; /**< the child's environment, NULL-terminated; NULL (default): the caller's. */
  const char *cwd;         /**< the child's working directory; NULL (default): the caller's. */
  uint32_t uid;            /**< with ASYNC_PROCESS_SET_UID: the child's user id. */
  uint32_t gid;            /**< with ASYNC_PROCESS_SET_GID: the child's group id. */
  int32_t stdio_mode[3];   /**< enum async_stdio_mode for fds 0, 1, 2; 0 (default): inherited. */
  int32_t stdio_fd[3];     /**< with ASYNC_STDIO_FD: the caller's fd given to the child as fd i. */
  /** With ASYNC_STDIO_PIPE, _SOCKETPAIR or _FIFO: the stream's protocol (copied; as for async_stream_adopt()). */
  const async_stream_protocol *stdio_protocol[3];
  void *stdio_userdata[3]; /**< with ASYNC_STDIO_PIPE, _SOCKETPAIR or _FIFO: the stream protocol's userdata. */
  /**
   * Called with the userdata of async_process_spawn() inside
   * async_process_free(): its final notification. NULL (default): none.
   */
  async_release_fn release;
} async_process_options;

/** @brief C convenience, the same as { sizeof(async_process_options) }: every default. */
#define ASYNC_PROCESS_OPTIONS_INIT \
  { sizeof(async_process_options), 0, 0, 0, 0, 0, 0, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, 0 }

/**
 * @brief Starts a child process.
 *
 * Returns once the child has exec'd its program (or failed to). The
 * stream of each fd made with ASYNC_STDIO_PIPE, _SOCKETPAIR or _FIFO is
 * made here and held by the process (async_process_stream()): its
 * connection_made runs from the loop, as for async_stream_adopt(), and so
 * does everything after it; the stream lives on its own, as any stream,
 * and ends when its transport does (the child exiting ends a stdout stream
 * once the bytes it wrote were read; a child that exits before reading
 * what is written to its stdin ends that stream with ASYNC_EPIPE, or over
 * a socketpair ASYNC_ECONNRESET when it left bytes unread, and never with
 * a SIGPIPE).
 *
 * The child's fds are its standard streams as asked and nothing else:
 * every other fd is closed (close_range()), close-on-exec or not. Signal
 * handlers are reset to their default in the child (dispositions set to
 * ignore stay ignored, as exec does), and its signal mask is the caller's
 * unless ASYNC_PROCESS_RESET_SIGMASK.
 *
 * @param[out] out      receives the process.
 * @param      loop     the loop that watches the child and runs its
 *                      streams.
 * @param      options  what to run and how (read during the call).
 * @param      userdata given to options->release; readable with
 *                      async_process_userdata(); may be NULL.
 * @retval 0                  the child runs its program; *out is the
 *                            process.
 * @retval ASYNC_EINVAL       out, options or argv is NULL, argv[0] is NULL
 *                            or empty; a size the library refuses,
 *                            unknown flags, NEW_GROUP with NEW_SESSION, a
 *                            mode out of the enum, a stream's protocol
 *                            invalid (as for async_stream_adopt()); loop
 *                            is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBADF        a stdio_fd[i] of ASYNC_STDIO_FD is not open.
 * @retval ASYNC_ENOENT       the program, or cwd, does not exist
 *                            (ENOENT, ENOTDIR).
 * @retval ASYNC_EACCES       the program or cwd may not be used, or uid,
 *                            gid or the session could not be set (EACCES,
 *                            EPERM).
 * @retval ASYNC_ENOEXEC      the kernel does not run that format (no
 *                            shell is tried).
 * @retval ASYNC_EMFILE       out of file descriptors.
 * @retval ASYNC_ENOMEM       out of memory (of the library, or of the
 *                            kernel for the new process). Rarely after
 *                            the child started (making a stdio stream):
 *                            it is then killed and the loop reaps it, and
 *                            the streams made already end through their
 *                            connection_lost (ASYNC_ENOMEM) and release.
 * @retval ASYNC_ENOTSUP      no pidfds (before Linux 5.3): the child made
 *                            was killed and reaped.
 * @retval ASYNC_EIO          another failure of the child's set-up or of
 *                            clone (EAGAIN: the process limit).
 * @ownership On success the process is the caller's: free it with
 *            async_process_free(). Stdio streams are the caller's as any
 *            stream (async/stream.h, Lifetime); their userdata stay the
 *            caller's until their release. On an error nothing was made,
 *            no child is left (one that failed to exec has been reaped),
 *            and no callback runs (but for the late ASYNC_ENOMEM above):
 *            userdata and the protocols' userdata stay the caller's. A caller's fd (ASYNC_STDIO_FD) always stays
 *            the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the streams' callbacks run from
 *            the loop.
 */
ASYNC_API int async_process_spawn(async_process **out, async_loop *loop, const async_process_options *options,
                                  void *userdata);

/**
 * @brief A future of the child's exit.
 *
 * Each call makes a new future: DONE, when the child has exited and been
 * reaped, with an async_process_result * as its value (no output:
 * async_process_result_output() gives 0 bytes); FAILED with ASYNC_ESTATE
 * when the application reaped the child itself. Cancelling it changes
 * nothing for the child or for the other futures. After the exit the
 * future is DONE already (its callbacks still run from the loop).
 *
 * @param[out] out  receives the future.
 * @param      proc the process (not freed).
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       out is NULL; proc is NULL, not a process, or
 *                            freed.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The caller holds the future's one reference (async/future.h);
 *            the result belongs to the future. The future outlives
 *            async_process_free() and completes all the same.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_wait(async_future **out, async_process *proc);

/**
 * @brief Sends signum to the child through its pidfd (pidfd_send_signal),
 * so never to another process that took its pid.
 *
 * @param proc   the process (not freed).
 * @param signum the signal, 1 to 64; 0 checks that the child can be
 *               signalled.
 * @retval 0                  sent.
 * @retval ASYNC_EINVAL       signum out of range; proc is NULL, not a
 *                            process, or freed.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ESTATE       the child has exited.
 * @retval ASYNC_EACCES       not permitted (a child that changed its uid).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_kill(async_process *proc, int signum);

/**
 * @brief The child's process id.
 *
 * @param proc the process (not freed).
 * @return the pid (> 0; still the child's after its exit, though the
 *         system may give it to another process once reaped), or
 *         ASYNC_EINVAL (proc NULL, not a process, or freed) or
 *         ASYNC_EWRONGTHREAD (the loop's thread check refused the caller).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_pid(async_process *proc);

/**
 * @brief The stream of the child's fd made with ASYNC_STDIO_PIPE,
 * ASYNC_STDIO_SOCKETPAIR or ASYNC_STDIO_FIFO.
 *
 * The process holds a reference to it (async_stream_retain()) until
 * async_process_free(), so the pointer stays valid as long as the process,
 * even once the stream has ended (calls on it then return ASYNC_ECLOSED).
 *
 * @param[out] out  receives the stream.
 * @param      proc the process (not freed).
 * @param      fd   0, 1 or 2.
 * @retval 0                  *out is the stream.
 * @retval ASYNC_EINVAL       out is NULL, fd is not 0, 1 or 2; proc is
 *                            NULL, not a process, or freed.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ESTATE       that fd is not a stream (ASYNC_STDIO_PIPE,
 *                            _SOCKETPAIR or _FIFO).
 * @ownership Borrowed: valid until async_process_free() (retain it to keep
 *            it longer).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_stream(async_stream **out, async_process *proc, int fd);

/**
 * @brief The userdata given to async_process_spawn().
 *
 * @param proc the process (not freed).
 * @return the userdata, or NULL if proc is NULL, not a process, freed, or
 *         the loop's thread check refused the caller.
 * @ownership Borrowed: the userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_process_userdata(async_process *proc);

/**
 * @brief Lets go of the process object; the child is left alone.
 *
 * A running child is not signalled: the loop reaps it when it exits (see
 * Lifetime in the file comment). Stdio streams are not closed: only the
 * process's reference to each is dropped. Wait futures still complete.
 *
 * @param proc the process.
 * @retval 0                  freed.
 * @retval ASYNC_EINVAL       proc is NULL, not a process, or freed
 *                            already.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @ownership proc must not be used after it.
 * @thread The loop's thread only.
 * @callbacks Runs options->release(userdata) inside this call.
 */
ASYNC_API int async_process_free(async_process *proc);

/**
 * @brief Runs argv with stdin_data as its input and collects its stdout,
 * its stderr and its exit, as asyncio's communicate().
 *
 * The child's stdin is a pipe(2) (ASYNC_STDIO_FIFO, so any program,
 * /dev/stdin readers too, gets what a shell pipeline gives) given
 * stdin_data then closed (/dev/null when stdin_data is NULL), a child
 * exiting before reading it all is not an error; stdout and stderr are
 * pipes (pipe(2)) read to their end. The
 * environment, working directory and signal mask are the caller's. The
 * future is DONE once the child has exited and both pipes have ended,
 * with an async_process_result * as its value. FAILED with ASYNC_ENOBUFS
 * when stdout and stderr together pass limit bytes: the child is killed
 * (SIGKILL) and reaped first. Cancelling the future kills the child the
 * same way.
 *
 * @param[out] out        receives the future.
 * @param      loop       the loop.
 * @param      argv       the program and its arguments, NULL-terminated
 *                        (as async_process_options.argv).
 * @param      stdin_data the child's input (copied); NULL: none.
 * @param      stdin_len  its length; 0 with stdin_data NULL.
 * @param      limit      the most bytes of output kept, stdout and stderr
 *                        together; 0: 16 MiB.
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       out or argv is NULL, argv[0] NULL or empty,
 *                            stdin_data NULL with stdin_len > 0; loop is
 *                            NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @return any other error of async_process_spawn() (ASYNC_ENOENT, ...).
 * @ownership The caller holds the future's one reference; the result
 *            belongs to the future.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_run(async_future **out, async_loop *loop, const char *const *argv,
                                const uint8_t *stdin_data, size_t stdin_len, size_t limit);

/**
 * @brief How the child ended.
 *
 * @param[out] out_exit_code receives the exit code (0 to 255), or -1 when
 *                           a signal ended the child; may be NULL.
 * @param[out] out_signal    receives the signal that ended the child, or 0
 *                           when it exited; may be NULL.
 * @param      result        a result (a future's value).
 * @retval 0            read.
 * @retval ASYNC_EINVAL result is NULL or not a result.
 * @ownership Nothing changes hands.
 * @thread Any thread, while the future that owns result is held.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_result_status(int *out_exit_code, int *out_signal, const async_process_result *result);

/**
 * @brief The bytes the child wrote to fd 1 (stdout) or 2 (stderr), as
 * async_process_run() collected them.
 *
 * @param[out] out_data receives the bytes (NULL when there are none).
 * @param[out] out_len  receives their number (0 for a result of
 *                      async_process_wait()).
 * @param      result   a result.
 * @param      fd       1 or 2.
 * @retval 0            read.
 * @retval ASYNC_EINVAL out_data or out_len is NULL, fd is not 1 or 2;
 *                      result is NULL or not a result.
 * @ownership Borrowed: the bytes belong to the result, valid while its
 *            future is held.
 * @thread Any thread, while the future that owns result is held.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_process_result_output(const uint8_t **out_data, size_t *out_len, const async_process_result *result,
                                          int fd);

#ifdef __cplusplus
}
#endif

#endif
