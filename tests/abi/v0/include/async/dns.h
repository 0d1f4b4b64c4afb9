/**
 * @file
 * @brief DNS inside the loop (c-ares), returning futures. No thread is
 * created.
 *
 * - Numeric hosts (`"192.0.2.1"`, `"::1"`, `"fe80::1%eth0"`, `"fe80::1%2"`),
 *   numeric ports and local names never reach DNS: no packet is sent for
 *   them. A local name (RFC 6761 §6.3) is "localhost" in any case, with or
 *   without the final dot, or any name under it ("foo.localhost"); it means
 *   "::1" and "127.0.0.1", whatever a hosts file says, the same names
 *   async_tcp_listen() and async_tcp_connect() take for loopback
 *   ("localhostx" and "localhost.example" are ordinary names).
 * - Every lookup completes its future on a later loop iteration, never
 *   inside the call that started it (also when the answer is known at once:
 *   literals, hosts-file hits, immediate errors).
 * - Cancelling (async_future_cancel(), or freeing the pending future) always
 *   reports ASYNC_ECANCELED, exactly once, even when a partial answer had
 *   already arrived.
 * - Every lookup has an overall deadline owned by libasync (see
 *   async_dns_set_deadline()); at expiry it fails with ASYNC_ETIMEDOUT.
 * - Freeing the loop with lookups in flight is refused (ASYNC_EBUSY, their
 *   futures keep it busy); free the futures first, which cancels them.
 *   Without done callbacks the loop can then be freed at once. Done
 *   callbacks are queued by the cancellation (status ASYNC_ECANCELED) and
 *   keep the loop busy (ASYNC_EBUSY) until they have run: one
 *   async_loop_run(loop, ASYNC_RUN_NOWAIT) runs them all, then the loop can
 *   be freed (unless those callbacks started new work). Queries still
 *   inside c-ares are dropped with the loop.
 * - At most 64 live lookups are handed to c-ares at once (a larger burst of
 *   UDP queries overflows socket buffers and waits for retransmissions);
 *   the others wait in libasync, their deadline already running. A lookup
 *   cancelled or past its deadline frees its place at once, but c-ares
 *   cannot drop a single query: it stays inside c-ares, unanswered or
 *   ignored, until c-ares' own timeout (async_dns_set_timeout()) at the
 *   latest. So that such queries cannot pile up, at most 128 lookups, live
 *   or abandoned, are inside c-ares; past that, new lookups wait in
 *   libasync until c-ares gives abandoned ones up.
 * - Errors a lookup fails with: ASYNC_ENOTFOUND (no such name),
 *   ASYNC_ENODATA (no address of that family), ASYNC_ETIMEDOUT,
 *   ASYNC_EREFUSED (refused, or no server reachable), ASYNC_ESERVFAIL,
 *   ASYNC_EBADNAME, ASYNC_ECANCELED, ASYNC_ENOMEM (also when no memory was
 *   left to watch the socket the query needs), ASYNC_EMFILE (no socket for
 *   the query: the process or the system is out of file descriptors). With
 *   one server, its SERVFAIL/REFUSED answer is reported as
 *   ASYNC_ESERVFAIL/ASYNC_EREFUSED; with several, such an answer makes
 *   c-ares try the next server, and a lookup every server failed reports
 *   ASYNC_EREFUSED (ASYNC_EMFILE or ASYNC_ENOMEM if the last server could
 *   not be tried for lack of a socket).
 *
 * c-ares reads /etc/resolv.conf when a loop's channel is created (the first
 * lookup after creation or after a configuration change) and, when the
 * hosts file is used, the hosts file on each lookup: small local files, read
 * on the loop thread.
 *
 * Family and socket-type values are the platform's (AF_UNSPEC, AF_INET,
 * AF_INET6, SOCK_STREAM, SOCK_DGRAM); struct sockaddr comes from
 * `<sys/socket.h>`.
 *
 * All functions: loop thread only. With the loop's owner-thread check on
 * (async_loop_set_thread_check()), a call taking a loop or a future from
 * another thread returns ASYNC_EWRONGTHREAD and changes nothing; the
 * result accessors (async_addrinfo_*, async_nameinfo_*) take objects of no
 * loop and are never checked.
 */
#ifndef ASYNC_DNS_H
#define ASYNC_DNS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/** @brief The result of async_getaddrinfo(): an ordered list of addresses. */
typedef struct async_addrinfo async_addrinfo;
/** @brief The result of async_getnameinfo(): a host and a service string. */
typedef struct async_nameinfo async_nameinfo;

/* async_getaddrinfo() flags. */
/** @brief async_getaddrinfo() flag: host must be a numeric address: never query DNS. */
#define ASYNC_DNS_NUMERICHOST 1u
/** @brief async_getaddrinfo() flag: host NULL gives the wildcard address (for bind). */
#define ASYNC_DNS_PASSIVE 2u
/** @brief async_getaddrinfo() flag: fill the canonical name (async_addrinfo_canonname()). */
#define ASYNC_DNS_CANONNAME 4u
/** @brief async_getaddrinfo() flag: service must be a port number (no /etc/services). */
#define ASYNC_DNS_NUMERICSERV 8u

/* async_getnameinfo() flags. */
/** @brief async_getnameinfo() flag: the address as text, no reverse lookup. */
#define ASYNC_NI_NUMERICHOST 1u
/** @brief async_getnameinfo() flag: the port as a number, no service name. */
#define ASYNC_NI_NUMERICSERV 2u
/** @brief async_getnameinfo() flag: fail (ASYNC_ENOTFOUND) rather than fall back to the number. */
#define ASYNC_NI_NAMEREQD 4u
/** @brief async_getnameinfo() flag: the service is a UDP one (changes a few names). */
#define ASYNC_NI_DGRAM 8u

/**
 * @brief Resolves host and service into a list of addresses, through a
 * future.
 *
 * On success the future's value is an async_addrinfo * owned by the future
 * (read it with the accessors below while the future lives, or take it
 * with async_addrinfo_take()). The list is never empty. Lookup failures
 * come through the future (see the file comment); a numeric host of
 * another family than the one asked fails it with ASYNC_ENODATA, a name
 * with an empty label or a label over 63 characters with ASYNC_EBADNAME
 * (no query is sent).
 *
 * @param[out] out      receives the future (set to NULL on failure when out
 *                      is not NULL).
 * @param      loop     the loop the lookup runs on.
 * @param      host     a name or a numeric address; NULL with a service: the
 *                      loopback address, or the wildcard with
 *                      ASYNC_DNS_PASSIVE.
 * @param      service  a port number "0".."65535" or a name from
 *                      /etc/services; NULL: port 0.
 * @param      family   AF_UNSPEC (both, IPv6 first when DNS answers both),
 *                      AF_INET or AF_INET6: the list holds entries of that
 *                      family only, whatever address records an answer
 *                      carries (an answer with none of that family fails
 *                      with ASYNC_ENODATA).
 * @param      socktype 0 (entries carry 0), SOCK_STREAM (protocol TCP) or
 *                      SOCK_DGRAM (protocol UDP).
 * @param      flags    ASYNC_DNS_* flags, or 0.
 * @retval 0            *out is the pending future.
 * @retval ASYNC_EINVAL out NULL, loop NULL or not a loop, both host and
 *         service NULL, an empty or over-long host (> 253 characters) or
 *         service, a port above 65535, an unknown service name, a service
 *         name with ASYNC_DNS_NUMERICSERV, bad family/socktype/flags, a
 *         non-numeric host with ASYNC_DNS_NUMERICHOST, a malformed or
 *         unknown scope.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver
 *         cannot be created).
 * @retval ASYNC_EMFILE no fd free to read /etc/resolv.conf with when this
 *         lookup sets up DNS (the loop's first lookup that needs DNS, or the
 *         first after a configuration change).
 * @retval ASYNC_EIO    c-ares could not set up DNS (its initialisation
 *         failed otherwise, e.g. an unreadable configuration).
 * @ownership The future is the caller's: free it with async_future_free()
 *            (a pending one is cancelled). The result list belongs to the
 *            future until async_addrinfo_take(). host and service are
 *            copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future completes on a later
 *            loop iteration, inside async_loop_run().
 */
ASYNC_API int async_getaddrinfo(async_future **out, async_loop *loop, const char *host, const char *service, int family,
                                int socktype, uint32_t flags);

/**
 * @brief Moves the result list out of a DONE future returned by
 * async_getaddrinfo().
 *
 * @param[out] out    receives the list.
 * @param      future the future.
 * @retval 0            *out is the list; the future's value becomes NULL.
 * @retval ASYNC_EINVAL out or future NULL, future not a future, not a
 *         getaddrinfo future, or its list taken already.
 * @retval ASYNC_ESTATE the future is not DONE.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of the future's loop
 *         is on and the caller is not its owner.
 * @ownership *out becomes the caller's: free it with async_addrinfo_free();
 *            it outlives the future.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_take(async_addrinfo **out, async_future *future);

/**
 * @brief Frees a list taken with async_addrinfo_take().
 *
 * @param list the list; NULL (or anything that is not a list) is ignored.
 * @ownership The caller's list is freed.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API void async_addrinfo_free(async_addrinfo *list);

/**
 * @brief The number of entries of a list.
 *
 * @param list the list.
 * @return the number of entries (> 0).
 * @retval ASYNC_EINVAL list is NULL or not a list.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_count(const async_addrinfo *list);

/**
 * @brief The family of entry index.
 *
 * @param list  the list.
 * @param index the entry, 0 to async_addrinfo_count() - 1.
 * @return AF_INET or AF_INET6.
 * @retval ASYNC_EINVAL list is NULL or not a list.
 * @retval ASYNC_ERANGE index is past the last entry.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_family(const async_addrinfo *list, size_t index);

/**
 * @brief The socket type of entry index.
 *
 * @param list  the list.
 * @param index the entry, 0 to async_addrinfo_count() - 1.
 * @return 0, SOCK_STREAM or SOCK_DGRAM.
 * @retval ASYNC_EINVAL list is NULL or not a list.
 * @retval ASYNC_ERANGE index is past the last entry.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_socktype(const async_addrinfo *list, size_t index);

/**
 * @brief The protocol of entry index.
 *
 * @param list  the list.
 * @param index the entry, 0 to async_addrinfo_count() - 1.
 * @return 0, IPPROTO_TCP or IPPROTO_UDP.
 * @retval ASYNC_EINVAL list is NULL or not a list.
 * @retval ASYNC_ERANGE index is past the last entry.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_protocol(const async_addrinfo *list, size_t index);

/**
 * @brief The address of entry index, with the port set.
 *
 * @param[out] out   receives the address.
 * @param      list  the list.
 * @param      index the entry, 0 to async_addrinfo_count() - 1.
 * @return the address length on success.
 * @retval ASYNC_EINVAL out NULL, list NULL or not a list.
 * @retval ASYNC_ERANGE index is past the last entry.
 * @ownership *out is borrowed from the list: valid while the list lives.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addrinfo_addr(const struct sockaddr **out, const async_addrinfo *list, size_t index);

/**
 * @brief The canonical name of a list.
 *
 * @param list the list.
 * @return the canonical name when ASYNC_DNS_CANONNAME was asked (the last
 *         CNAME target, or the host itself); NULL otherwise or when list is
 *         not a list.
 * @ownership Borrowed from the list: valid while the list lives.
 * @thread The loop's thread only (a list is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_addrinfo_canonname(const async_addrinfo *list);

/**
 * @brief Reverse lookup: an address to a host name and a service name,
 * through a future.
 *
 * On success the future's value is an async_nameinfo * owned by the
 * future. Without ASYNC_NI_NAMEREQD an address with no name gives its
 * numeric form; a PTR record naming the root (the empty name) counts as no
 * name: the host is never empty. A name not found with ASYNC_NI_NAMEREQD
 * fails the future with ASYNC_ENOTFOUND; other failures as for
 * async_getaddrinfo().
 *
 * @param[out] out     receives the future (set to NULL on failure when out
 *                     is not NULL).
 * @param      loop    the loop the lookup runs on.
 * @param      addr    an AF_INET or AF_INET6 address.
 * @param      addrlen the size of addr.
 * @param      flags   ASYNC_NI_* flags, or 0.
 * @retval 0            *out is the pending future.
 * @retval ASYNC_EINVAL out, loop or addr NULL, loop not a loop, a bad
 *         family or length, unknown flags.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver
 *         cannot be created).
 * @retval ASYNC_EMFILE no fd free to read /etc/resolv.conf with when this
 *         lookup sets up DNS (the loop's first lookup that needs DNS, or the
 *         first after a configuration change).
 * @retval ASYNC_EIO    c-ares could not set up DNS (its initialisation
 *         failed otherwise, e.g. an unreadable configuration).
 * @ownership The future is the caller's: free it with async_future_free()
 *            (a pending one is cancelled); the result belongs to the
 *            future. addr is copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future completes on a later
 *            loop iteration, inside async_loop_run().
 */
ASYNC_API int async_getnameinfo(async_future **out, async_loop *loop, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags);

/**
 * @brief The host of a getnameinfo result.
 *
 * @param info the result (the value of a DONE async_getnameinfo() future).
 * @return the host; NULL if info is not a getnameinfo result.
 * @ownership Borrowed from info: valid while the future holding it lives.
 * @thread The loop's thread only (a result is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_nameinfo_host(const async_nameinfo *info);

/**
 * @brief The service of a getnameinfo result.
 *
 * @param info the result (the value of a DONE async_getnameinfo() future).
 * @return the service; NULL if info is not a getnameinfo result.
 * @ownership Borrowed from info: valid while the future holding it lives.
 * @thread The loop's thread only (a result is of no loop: the owner-thread
 *         check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_nameinfo_service(const async_nameinfo *info);

/*
 * Per-loop configuration. Each call applies to lookups started after it.
 * While lookups of this loop are in flight they return ASYNC_EBUSY and
 * change nothing (cancelled lookups do not count), except
 * async_dns_set_deadline().
 */

/**
 * @brief Sets the DNS servers.
 *
 * @param loop    the loop.
 * @param servers a comma-separated list of numeric addresses with
 *                optional ports: `"192.0.2.53"`,
 *                `"127.0.0.1:15353,[::1]:15353"`; NULL restores the
 *                system's (/etc/resolv.conf).
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop, a malformed list.
 * @retval ASYNC_EBUSY  lookups of this loop are in flight; nothing changed.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands; strings are copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_servers(async_loop *loop, const char *servers);

/**
 * @brief Sets the per-try timeout and the number of tries per server.
 *
 * c-ares doubles the per-try timeout on each pass over the servers.
 *
 * @param loop       the loop.
 * @param timeout_ms the per-try timeout in ms, 1..INT32_MAX (default 2000).
 * @param tries      tries per server, 1..100 (default 2).
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop, a value out of range.
 * @retval ASYNC_EBUSY  lookups of this loop are in flight; nothing changed.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_timeout(async_loop *loop, uint32_t timeout_ms, uint32_t tries);

/**
 * @brief Sets the overall deadline of each lookup.
 *
 * Enforced by libasync whatever c-ares does: the future fails with
 * ASYNC_ETIMEDOUT. Applies to lookups started afterwards; allowed while
 * lookups are in flight (never ASYNC_EBUSY).
 *
 * @param loop        the loop.
 * @param deadline_ms the deadline in ms, > 0 (default 10000).
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop, deadline_ms 0.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_deadline(async_loop *loop, uint64_t deadline_ms);

/**
 * @brief Round-robin over the servers instead of always trying the first.
 *
 * @param loop   the loop.
 * @param rotate non-zero: round-robin; 0: first server first (default).
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop.
 * @retval ASYNC_EBUSY  lookups of this loop are in flight; nothing changed.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_rotate(async_loop *loop, int rotate);

/**
 * @brief Sets the hosts file consulted before DNS.
 *
 * The file is read on each lookup that reaches name resolution, hosts
 * format: lines of any length, any number of names; an IPv6 address may
 * carry a scope, `"fe80::1%eth0"` or `"fe80::1%2"`, kept in the result's
 * sin6_scope_id.
 *
 * @param loop the loop.
 * @param path a path; "" for none (DNS only); NULL for the system's
 *             (/etc/hosts, or $CARES_HOSTS).
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop.
 * @retval ASYNC_EBUSY  lookups of this loop are in flight; nothing changed.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands; strings are copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_hosts_file(async_loop *loop, const char *path);

/**
 * @brief Sets the search domains and ndots.
 *
 * Names with fewer dots than ndots are tried with each domain appended
 * first.
 *
 * @param loop    the loop.
 * @param domains comma-separated domains; "" for none; NULL for the
 *                system's.
 * @param ndots   0..15.
 * @retval 0 set.
 * @retval ASYNC_EINVAL loop NULL or not a loop, ndots > 15, a malformed
 *         list (whitespace, an empty entry, too many or too long).
 * @retval ASYNC_EBUSY  lookups of this loop are in flight; nothing changed.
 * @retval ASYNC_ENOMEM out of memory (also when the loop's resolver cannot
 *         be created); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @ownership Nothing changes hands; strings are copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_dns_set_search(async_loop *loop, const char *domains, uint32_t ndots);

#ifdef __cplusplus
}
#endif

#endif
