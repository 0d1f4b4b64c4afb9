/*
 * The echo protocol of the libasync echo servers (echo_async.c, plain TCP;
 * tls_echo_async.c, above TLS): every byte written back as it comes, the
 * write marks of echo_policy.h, reading paused while the peer is slow.
 */
#ifndef ECHO_ASYNC_PROTOCOL_H
#define ECHO_ASYNC_PROTOCOL_H

#include <async.h>

#include "echo_policy.h"

static void echo_made(async_stream *stream, void *userdata) {
  (void)userdata;
  BENCH_CHECK(async_stream_set_write_limits(stream, ECHO_HIGH_WATER, ECHO_LOW_WATER));
}

static size_t echo_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  async_stream_write(stream, data, len);
  return len;
}

static void echo_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static void echo_pause(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_pause_reading(stream);
}

static void echo_resume(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_resume_reading(stream);
}

static const async_stream_protocol echo = {
    sizeof(async_stream_protocol), echo_made, echo_data, NULL, echo_lost, echo_pause, echo_resume, NULL, NULL, 0, NULL,
};

#endif
