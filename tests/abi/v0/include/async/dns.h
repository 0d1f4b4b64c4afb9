/*
 * DNS inside the loop (c-ares), returning futures. No thread is created.
 *
 * - Numeric hosts ("192.0.2.1", "::1", "fe80::1%eth0", "fe80::1%2"),
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
 * <sys/socket.h>. All functions: loop thread only.
 */
#ifndef ASYNC_DNS_H
#define ASYNC_DNS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/* The result of async_getaddrinfo(): an ordered list of addresses. */
typedef struct async_addrinfo async_addrinfo;
/* The result of async_getnameinfo(): a host and a service string. */
typedef struct async_nameinfo async_nameinfo;

/* async_getaddrinfo() flags. */
#define ASYNC_DNS_NUMERICHOST 1u /* host must be a numeric address: never query DNS */
#define ASYNC_DNS_PASSIVE 2u     /* host NULL gives the wildcard address (for bind) */
#define ASYNC_DNS_CANONNAME 4u   /* fill the canonical name (async_addrinfo_canonname) */
#define ASYNC_DNS_NUMERICSERV 8u /* service must be a port number (no /etc/services) */

/* async_getnameinfo() flags. */
#define ASYNC_NI_NUMERICHOST 1u /* the address as text, no reverse lookup */
#define ASYNC_NI_NUMERICSERV 2u /* the port as a number, no service name */
#define ASYNC_NI_NAMEREQD 4u    /* fail (ASYNC_ENOTFOUND) rather than fall back to the number */
#define ASYNC_NI_DGRAM 8u       /* the service is a UDP one (changes a few names) */

/*
 * Resolves host (a name or a numeric address; NULL with a service: the
 * loopback address, or the wildcard with ASYNC_DNS_PASSIVE) and service (a
 * port number "0".."65535" or a name from /etc/services; NULL: port 0) into
 * a future whose value, on success, is an async_addrinfo * owned by the
 * future (read it with the accessors below while the future lives, or take
 * it with async_addrinfo_take()). The list is never empty.
 *
 * family: AF_UNSPEC (both, IPv6 first when DNS answers both), AF_INET or
 * AF_INET6: the list holds entries of that family only, whatever address
 * records an answer carries (an answer with none of that family fails with
 * ASYNC_ENODATA). socktype: 0 (entries carry 0), SOCK_STREAM (protocol TCP) or
 * SOCK_DGRAM (protocol UDP). flags: ASYNC_DNS_* above.
 *
 * Errors (returned, no future created): ASYNC_EINVAL (out/loop NULL, both
 * host and service NULL, empty or over-long host (> 253 characters) or
 * service, a port above 65535, an unknown service name, bad
 * family/socktype/flags, a non-numeric host with ASYNC_DNS_NUMERICHOST, a
 * malformed or unknown scope), ASYNC_ENOMEM, ASYNC_EMFILE (no fd free to
 * read /etc/resolv.conf with when the loop's first lookup, or the first
 * after a configuration change, sets up DNS). Lookup failures come through
 * the future (see above); a numeric host of the other family than the one
 * asked fails it with ASYNC_ENODATA, a name with an empty label or a label
 * over 63 characters with ASYNC_EBADNAME (no query is sent).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_getaddrinfo(async_future **out, async_loop *loop, const char *host, const char *service, int family,
                                int socktype, uint32_t flags);

/*
 * Moves the result list out of a DONE future returned by
 * async_getaddrinfo(): *out becomes the caller's (free it with
 * async_addrinfo_free()); the future's value becomes NULL.
 * Errors: ASYNC_EINVAL (NULL, not a getaddrinfo future, already taken),
 * ASYNC_ESTATE (not DONE).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_take(async_addrinfo **out, async_future *future);

/*
 * Frees a list taken with async_addrinfo_take(). NULL is ignored.
 * Callbacks: none run inside this call.
 */
ASYNC_API void async_addrinfo_free(async_addrinfo *list);

/*
 * Number of entries (> 0). Errors: ASYNC_EINVAL (not a list).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_count(const async_addrinfo *list);

/*
 * Entry index's family (AF_INET or AF_INET6). Errors: ASYNC_EINVAL,
 * ASYNC_ERANGE (index).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_family(const async_addrinfo *list, size_t index);

/*
 * Entry index's socket type (0, SOCK_STREAM, SOCK_DGRAM). Errors: ASYNC_EINVAL,
 * ASYNC_ERANGE.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_socktype(const async_addrinfo *list, size_t index);

/*
 * Entry index's protocol (0, IPPROTO_TCP, IPPROTO_UDP). Errors: ASYNC_EINVAL,
 * ASYNC_ERANGE.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_protocol(const async_addrinfo *list, size_t index);

/*
 * Entry index's address (borrowed from the list, with the port set) and
 * its length. Returns the length. Errors: ASYNC_EINVAL, ASYNC_ERANGE.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addrinfo_addr(const struct sockaddr **out, const async_addrinfo *list, size_t index);

/*
 * The canonical name when ASYNC_DNS_CANONNAME was asked (the last CNAME
 * target, or the host itself), else NULL. Borrowed from the list.
 * Callbacks: none run inside this call.
 */
ASYNC_API const char *async_addrinfo_canonname(const async_addrinfo *list);

/*
 * Reverse lookup: addr (AF_INET/AF_INET6, addrlen bytes, copied) to a host
 * name and a service name. The future's value, on success, is an
 * async_nameinfo * owned by the future. Without ASYNC_NI_NAMEREQD an
 * address with no name gives its numeric form; a PTR record naming the
 * root (the empty name) counts as no name: the host is never empty.
 * Errors (returned): ASYNC_EINVAL (NULL, bad family or length, unknown
 * flags), ASYNC_ENOMEM, ASYNC_EMFILE (as async_getaddrinfo()). A name not found with ASYNC_NI_NAMEREQD fails the
 * future with ASYNC_ENOTFOUND.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_getnameinfo(async_future **out, async_loop *loop, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags);

/*
 * The host of a getnameinfo result; borrowed. NULL if info is not one.
 * Callbacks: none run inside this call.
 */
ASYNC_API const char *async_nameinfo_host(const async_nameinfo *info);

/*
 * The service of a getnameinfo result; borrowed. NULL if info is not one.
 * Callbacks: none run inside this call.
 */
ASYNC_API const char *async_nameinfo_service(const async_nameinfo *info);

/*
 * Per-loop configuration. Each call applies to lookups started after it.
 * While lookups of this loop are in flight they return ASYNC_EBUSY and
 * change nothing (cancelled lookups do not count).
 */

/*
 * DNS servers as a comma-separated list of numeric addresses with optional
 * ports: "192.0.2.53", "127.0.0.1:15353,[::1]:15353". NULL restores the
 * system's (/etc/resolv.conf). Errors: ASYNC_EINVAL (malformed list),
 * ASYNC_EBUSY, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_servers(async_loop *loop, const char *servers);

/*
 * Per-try timeout (ms, 1..INT32_MAX; default 2000) and number of tries per
 * server (1..100; default 2). c-ares doubles the per-try timeout on each pass over
 * the servers. Errors: ASYNC_EINVAL, ASYNC_EBUSY.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_timeout(async_loop *loop, uint32_t timeout_ms, uint32_t tries);

/*
 * The overall deadline of each lookup (ms, > 0; default 10000), enforced by
 * libasync whatever c-ares does: the future fails with ASYNC_ETIMEDOUT.
 * Applies to lookups started afterwards; allowed while lookups are in
 * flight. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_deadline(async_loop *loop, uint64_t deadline_ms);

/*
 * Round-robin over the servers instead of always trying the first. Errors:
 * ASYNC_EINVAL, ASYNC_EBUSY.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_rotate(async_loop *loop, int rotate);

/*
 * Hosts file consulted before DNS: a path (read on each lookup that reaches
 * name resolution, hosts format: lines of any length, any number of names;
 * an IPv6 address may carry a scope, "fe80::1%eth0" or "fe80::1%2", kept in
 * the result's sin6_scope_id), "" for none (DNS only), NULL for the
 * system's (/etc/hosts, or $CARES_HOSTS). Errors: ASYNC_EINVAL, ASYNC_EBUSY,
 * ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_hosts_file(async_loop *loop, const char *path);

/*
 * Search domains (comma-separated, "" for none, NULL for the system's) and
 * ndots: names with fewer dots than ndots are tried with each domain
 * appended first. Errors: ASYNC_EINVAL (ndots > 15), ASYNC_EBUSY,
 * ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_dns_set_search(async_loop *loop, const char *domains, uint32_t ndots);

#ifdef __cplusplus
}
#endif

#endif
