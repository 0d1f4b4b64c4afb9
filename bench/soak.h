/*
 * The soak benchmark's line protocol (bench/soak.sh), shared by
 * soak_server.c and soak_client.c. Every message is one line ending in
 * '\n'. The server echoes each line, except:
 *   "bye\n"    answered with "bye\n", then the server closes (it ends the
 *              connection first: a FIN from its side);
 *   "quiet\n"  not answered: the server sets the stream's idle timeout to
 *              SOAK_QUIET_MS, so the connection ends by that timeout.
 * Every accepted stream also gets an idle timeout of SOAK_IDLE_MS, far above
 * a connection's life, so the timer is armed, pushed back on every read and
 * write and released with every stream without firing.
 */
#ifndef SOAK_H
#define SOAK_H

#define SOAK_BYE "bye\n"
#define SOAK_QUIET "quiet\n"
#define SOAK_QUIET_MS 100
#define SOAK_IDLE_MS (3600u * 1000u)
/* A line longer than this is a protocol error. */
#define SOAK_MAX_LINE 64
#define SOAK_BACKLOG 4096

#endif
