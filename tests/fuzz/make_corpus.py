#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: tests/fuzz/corpus/<target>/<name>.

Run from anywhere: python3 tests/fuzz/make_corpus.py. Each seed is a small
hand-made input in the target's input format (see the comment at the top of
each fuzz_*.cpp); the files are committed, so rerunning only matters after
a format change. Existing seeds of the same name are overwritten, others
(saved crash reproducers, for example) are left alone.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_addr: mode byte (bit 0: format raw sockaddr bytes), then text or bytes.
ADDR_TEXTS = [
    "192.0.2.1", "192.0.2.1:8080", "0.0.0.0:0", "255.255.255.255:65535", "::1", "[::1]:8080",
    "::", "[::]:0", "fe80::1%lo", "[fe80::1%lo]:8080", "fe80::1%2", "[fe80::1%4294967295]:1",
    "::ffff:192.0.2.1", "[::ffff:192.0.2.1]:443", "2001:db8::1", "[2001:db8:0:0:1:0:0:1]:53",
    "1:2:3:4:5:6:7:8", "192.0.2.1:65536", "[::1]", "::1:80", " 192.0.2.1", "192.0.2.1:", "1.2.3",
    "[::1]:08080", "fe80::1%", "192.0.2.1%lo",
]
for i, text in enumerate(ADDR_TEXTS):
    write("fuzz_addr", "parse-%02d" % i, bytes([(i % 8) * 2]) + text.encode())


def sin(port, addr):
    return struct.pack("=H", 2) + struct.pack("!H", port) + bytes(addr) + bytes(8)


def sin6(port, addr, scope=0, flow=0):
    return struct.pack("=H", 10) + struct.pack("!H", port) + struct.pack("=I", flow) + bytes(addr) + struct.pack("=I", scope)


LOOP6 = bytes(15) + b"\x01"
LL6 = b"\xfe\x80" + bytes(13) + b"\x01"
MAPPED = bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 1])
RAW = [
    (1, sin(80, [192, 0, 2, 1])),
    (3, sin(0, [0, 0, 0, 0])),
    (1, sin6(443, LOOP6)),
    (3, sin6(53, LL6, scope=1)),
    (1, sin6(53, LL6, scope=77, flow=5)),
    (1, sin6(1, MAPPED)),
    (7, sin6(1, LOOP6)),  # unknown flag bits
    (1, sin(80, [10, 0, 0, 1])[:10]),  # too short
    (1, struct.pack("=H", 1) + b"/tmp/x"),  # AF_UNIX
]
for i, (mode, raw) in enumerate(RAW):
    write("fuzz_addr", "format-%02d" % i, bytes([mode]) + raw)

# ---- fuzz_hosts: the hosts file itself.
HOSTS = {
    "debian": b"127.0.0.1\tlocalhost\n127.0.1.1\thost.example host\n\n"
              b"# The following lines are desirable for IPv6 capable hosts\n"
              b"::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n",
    "both-families": b"192.0.2.1 a.example a\n2001:db8::1 a.example a\n192.0.2.2 b A.EXAMPLE\n",
    "comments": b"# only a comment\n192.0.2.1 a # trailing comment\n  192.0.2.2\tb\r\n#192.0.2.3 c\n",
    "scope": b"fe80::1%lo linklocal\nfe80::2%eth0 ll2 a\n",
    "bad-addresses": b"300.1.1.1 bad\n1.2.3 short\n::g bad6\nlocalhost 127.0.0.1\n192.0.2.1\n",
    "no-newline": b"192.0.2.9 last-line",
    "many": b"".join(b"192.0.2.%d a x%d\n" % (i, i) for i in range(40)),
    "long-line": b"192.0.2.1 " + b"n" * 1100 + b" a\n192.0.2.2 a\n",
    "long-name": b"192.0.2.1 " + b"c" * 300 + b" a\n",
    "many-fields": b"192.0.2.1 " + b" ".join(b"n%d" % i for i in range(40)) + b"\n",
    "mapped": b"::ffff:192.0.2.1 mapped\n192.0.2.1 plain mapped\n",
    "nul": b"192.0.2.1 a\x00hidden\n192.0.2.2\x00 b\n",
    "crlf-tabs": b"\t192.0.2.1\t\ta\r\n\r\n192.0.2.2 \t a \r\n",
}
for name, data in HOSTS.items():
    write("fuzz_hosts", name, data)


# ---- fuzz_reader: FuzzedDataProvider takes the bytes from the front and
# the integers (one byte each here) from the back, in the order below.
EXACTLY, UNTIL, LINE, SOME = range(4)


def reader_seed(limit, reads, cuts, data):
    ints = [limit, len(reads) - 1]  # count: 1..16
    for kind, n, *delim in reads:
        lo = 1 if kind in (EXACTLY, SOME) else 0
        ints += [kind, n - lo]
        if kind == UNTIL:
            ints += [len(delim[0]) - 1] + list(delim[0])
    ints.append(len(cuts))
    ints += [c - 1 for c in cuts]
    return data + bytes(reversed(ints))


READER = {
    "lines": reader_seed(0, [(LINE, 0), (LINE, 0), (SOME, 10)], [3, 5], b"hello\nworld\ntail"),
    "line-limit": reader_seed(8, [(LINE, 8), (LINE, 8), (SOME, 16)], [4, 4], b"0123456789\nabc\n"),
    "line-limit-one-read": reader_seed(8, [(LINE, 8), (SOME, 16)], [12], b"0123456789\n"),
    "until-crlf": reader_seed(32, [(UNTIL, 32, b"\r\n"), (UNTIL, 32, b"\r\n"), (EXACTLY, 2)], [1, 1, 1],
                              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "until-split-delim": reader_seed(16, [(UNTIL, 16, b"END"), (SOME, 4)], [5, 1, 1], b"abcdEN" + b"D" + b"xyz"),
    "exactly": reader_seed(0, [(EXACTLY, 4), (EXACTLY, 3), (EXACTLY, 10)], [2, 2, 2], b"\x00\x01\x02\x03abcdef"),
    "some": reader_seed(4, [(SOME, 3), (SOME, 3), (SOME, 3), (SOME, 3)], [1, 2], b"0123456789"),
    "empty": reader_seed(0, [(LINE, 0), (SOME, 1), (EXACTLY, 1)], [], b""),
    "eof-partial-line": reader_seed(0, [(LINE, 0), (LINE, 0)], [2], b"one\ntwo"),
    "length-prefixed": reader_seed(0, [(EXACTLY, 2), (EXACTLY, 5), (EXACTLY, 2), (EXACTLY, 3)], [1, 3, 2],
                                   b"\x00\x05hello\x00\x03abc"),
}
for name, data in READER.items():
    write("fuzz_reader", name, data)


# ---- fuzz_dns: control byte, then a DNS answer (header, then records; the
# fuzzer inserts the query's question after the header in modes 0-1).
def rr(rtype, rdata, name=b"\xc0\x0c", ttl=60):
    return name + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def header(rcode=0, an=0, ns=0, ar=0, tc=False):
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    return struct.pack("!HHHHHH", 0, flags, 1, an, ns, ar)


def dns_name(text):
    return b"".join(bytes([len(p)]) + p for p in text.encode().split(b".")) + b"\x00"


A, CNAME, PTR, AAAA, SOA = 1, 5, 12, 28, 6
UNSPEC, INET, INET6, NAMEINFO = range(4)
CANON, ALT, CANCEL, TAKE = 4, 8, 0x40, 0x80
ID_ONLY, RAW = 0x30, 0xB0
V4 = bytes([192, 0, 2, 7])
V6 = bytes.fromhex("20010db8000000000000000000000007")
SOA_RDATA = dns_name("ns.example") + dns_name("host.example") + struct.pack("!IIIII", 1, 2, 3, 4, 60)
DNS = {
    "a": (INET, header(an=1) + rr(A, V4)),
    "aaaa": (INET6, header(an=1) + rr(AAAA, V6)),
    "both-unspec": (UNSPEC, header(an=2) + rr(A, V4) + rr(AAAA, V6)),
    "canon-cname": (INET | CANON, header(an=2) + rr(CNAME, dns_name("real.example"))
                    + rr(A, V4, name=dns_name("real.example"))),
    # A CNAME to the root name: the canonical name is "" (it once had no
    # room in the list; found by the fuzzer).
    "canon-cname-root": (INET | CANON, header(an=2) + rr(CNAME, b"\x00") + rr(A, V4, name=b"\x00")),
    "cname-loop": (UNSPEC | CANON, header(an=2) + rr(CNAME, dns_name("b.example"))
                   + rr(CNAME, b"\xc0\x0c", name=dns_name("b.example"))),
    "service": (INET | ALT, header(an=1) + rr(A, V4)),
    "take": (UNSPEC | TAKE, header(an=3) + rr(A, V4) + rr(A, bytes([192, 0, 2, 8])) + rr(AAAA, V6)),
    "nxdomain": (UNSPEC, header(rcode=3, ns=1) + rr(SOA, SOA_RDATA)),
    "nodata": (INET, header(ns=1) + rr(SOA, SOA_RDATA)),
    "servfail": (INET, header(rcode=2)),
    "refused": (INET6, header(rcode=5)),
    "wrong-type": (INET, header(an=1) + rr(AAAA, V6)),
    "bad-rdlength": (INET, header(an=1) + rr(A, V4)[:-2]),
    "truncated-tcp": (INET, header(an=1, tc=True) + rr(A, V4)),
    "ptr": (NAMEINFO, header(an=1) + rr(PTR, dns_name("host.example"))),
    "ptr-v6-namereqd": (NAMEINFO | ALT | CANON, header(an=1) + rr(PTR, dns_name("host6.example"))),
    "ptr-nxdomain-namereqd": (NAMEINFO | CANON, header(rcode=3)),
    "ptr-root": (NAMEINFO, header(an=1) + rr(PTR, b"\x00")),
    "ptr-root-namereqd": (NAMEINFO | CANON, header(an=1) + rr(PTR, b"\x00")),
    "cancel": (UNSPEC | CANCEL, header(an=1) + rr(A, V4)),
    "id-only": (INET | ID_ONLY, header(an=1) + dns_name("fuzz.example") + struct.pack("!HH", 1, 1) + rr(A, V4)),
    "raw": (INET | RAW, header(an=1) + dns_name("fuzz.example") + struct.pack("!HH", 1, 1) + rr(A, V4)),
    "compression-loop": (INET, header(an=1) + rr(A, V4, name=b"\xc0\x18")),
}
for name, (control, msg) in DNS.items():
    write("fuzz_dns", name, bytes([control]) + msg)


# ---- fuzz_api: (opcode, argument) byte pairs; opcodes as in fuzz_api.cpp
# (the opcode is taken modulo 18). A stream/reader/datagram change also
# reads the next pair's opcode byte as its size.
(TIMER, TIMER_CHANGE, SOON, POST, FUTURE, FUTURE_CHANGE, STREAM_PAIR, STREAM_CHANGE, READER, READER_CHANGE,
 DGRAM, DGRAM_CHANGE, SERVER, SERVER_CHANGE, LOOKUP, NOWAIT, NOWAIT2, ONCE) = range(18)


def program(*pairs):
    return b"".join(bytes([op, arg]) for op, arg in pairs)


API = {
    "timers": program((TIMER, 0x10), (TIMER, 0x01), (TIMER, 0x04), (ONCE, 0), (ONCE, 0), (TIMER_CHANGE, 1),
                      (TIMER_CHANGE, 2), (ONCE, 0), (TIMER_CHANGE, 0), (NOWAIT, 0)),
    "callbacks": program((SOON, 0), (POST, 0), (NOWAIT, 0), (SOON, 0), (POST, 0)),
    "futures": program((FUTURE, 2), (FUTURE, 1), (FUTURE, 0), (FUTURE_CHANGE, 0), (FUTURE_CHANGE, 6),
                       (FUTURE_CHANGE, 7), (FUTURE_CHANGE, 5 | 8), (NOWAIT, 0), (FUTURE_CHANGE, 1),
                       (FUTURE_CHANGE, 2), (FUTURE_CHANGE, 4), (ONCE, 0), (FUTURE_CHANGE, 3)),
    "streams": program((STREAM_PAIR, 0x34), (NOWAIT, 0), (STREAM_CHANGE, 0), (STREAM_CHANGE, 2), (NOWAIT, 0),
                       (STREAM_CHANGE, 1), (200, 0), (ONCE, 0), (STREAM_CHANGE, 3), (NOWAIT, 0), (STREAM_CHANGE, 4),
                       (NOWAIT, 0)),
    "stream-flow": program((STREAM_PAIR, 0x03), (STREAM_CHANGE, 7), (64, 0), (STREAM_CHANGE, 1), (255, 0),
                           (STREAM_CHANGE, 6), (1, 0), (ONCE, 0), (STREAM_CHANGE, 6), (2, 0), (ONCE, 0), (ONCE, 0),
                           (STREAM_CHANGE, 5)),
    "stream-protocol-idle": program((STREAM_PAIR, 0x00), (NOWAIT, 0), (STREAM_CHANGE, 9), (4, 0),
                                    (STREAM_CHANGE, 10), (9, 0), (STREAM_CHANGE, 11), (0, 0), (ONCE, 0),
                                    (STREAM_CHANGE, 8), (1, 0), (ONCE, 0), (ONCE, 0), (ONCE, 0)),
    "future-cancel-hook": program((FUTURE, 0x42), (FUTURE, 0x40), (FUTURE_CHANGE, 0), (FUTURE_CHANGE, 1 << 3 | 2),
                                  (NOWAIT, 0), (FUTURE, 0x40)),
    "stream-self-close": program((STREAM_PAIR, 0x12), (NOWAIT, 0), (STREAM_CHANGE, 0), (10, 0), (ONCE, 0),
                                 (STREAM_CHANGE, 9), (10, 0), (ONCE, 0)),
    "reader": program((READER, 8), (NOWAIT, 0), (READER_CHANGE, 0), (5, 0), (READER_CHANGE, 3), (0, 0),
                      (ONCE, 0), (READER_CHANGE, 4), (0, 0), (READER_CHANGE, 0), (20, 0), (ONCE, 0),
                      (READER_CHANGE, 2), (ONCE, 0), (READER_CHANGE, 6), (0, 0), (READER_CHANGE, 7), (ONCE, 0)),
    "reader-exactly": program((READER, 0), (NOWAIT, 0), (READER_CHANGE, 5), (3, 0), (READER_CHANGE, 1), (7, 0),
                              (ONCE, 0), (ONCE, 0), (READER_CHANGE, 15), (NOWAIT, 0)),
    # Known defect: a reader freed before its stream's connection_made.
    "reader-free-before-made": program((READER, 0), (READER_CHANGE, 7)),
    "datagrams": program((DGRAM, 0), (DGRAM, 1), (NOWAIT, 0), (DGRAM_CHANGE, 0), (4, 0), (DGRAM_CHANGE, 1),
                         (100, 0), (ONCE, 0), (ONCE, 0), (DGRAM_CHANGE, 2), (DGRAM_CHANGE, 3), (NOWAIT, 0)),
    "server": program((SERVER, 0x08), (SERVER_CHANGE, 0), (SERVER_CHANGE, 1), (ONCE, 0), (ONCE, 0), (ONCE, 0),
                      (STREAM_CHANGE, 0), (30, 0), (ONCE, 0), (SERVER_CHANGE, 2), (ONCE, 0), (SERVER_CHANGE, 3),
                      (NOWAIT, 0)),
    "server-refuse": program((SERVER, 0x01), (SERVER_CHANGE, 0), (SERVER_CHANGE, 1), (ONCE, 0), (ONCE, 0),
                             (ONCE, 0)),
    "lookups": program((LOOKUP, 0), (LOOKUP, 1), (LOOKUP, 2), (LOOKUP, 3), (LOOKUP, 4), (ONCE, 0),
                       (FUTURE_CHANGE, 3), (LOOKUP, 8), (FUTURE_CHANGE, 2), (NOWAIT, 0)),
    "mix": program((TIMER, 0x11), (STREAM_PAIR, 0x40), (FUTURE, 3), (READER, 4), (DGRAM, 2), (SERVER, 0x10),
                   (LOOKUP, 1), (SOON, 0), (ONCE, 0), (SERVER_CHANGE, 1), (STREAM_CHANGE, 0), (40, 0),
                   (READER_CHANGE, 1), (9, 0), (READER_CHANGE, 3), (0, 0), (FUTURE_CHANGE, 6), (ONCE, 0),
                   (ONCE, 0), (TIMER_CHANGE, 0), (DGRAM_CHANGE, 0), (8, 0), (ONCE, 0)),
}
for name, data in API.items():
    write("fuzz_api", name, data)

# ---- fuzz_layer: the bytes come first (FuzzedDataProvider takes them from
# the front), the choices from the back: a byte pattern, then a tail of
# choice bytes (depth, rates, delivery, cuts, consumes, pause, ending).
def layer_seed(length, tail):
    return bytes((i * 131 + 7) & 0xFF for i in range(length)) + bytes(tail)


LAYER = {
    "one-layer-close": layer_seed(64, [0] * 40),
    "deep-cuts": layer_seed(3000, [2, 0, 0, 0, 0, 0, 0, 1, 5, 17, 200, 100, 3, 7, 1, 1, 0] * 3),
    "rated-pop": layer_seed(2500, [1, 0, 3, 0, 0, 1, 1, 2, 9, 9, 9, 0, 1, 1] * 4),
    "abort-paused": layer_seed(5000, [255, 128, 64, 32, 16, 8, 4, 2, 1, 3, 5, 7, 11, 13, 2] * 4),
    "empty": b"",
}
for name, data in LAYER.items():
    write("fuzz_layer", name, data)

# ---- fuzz_socks: the bytes first, then the choices from the back (a rate
# limiter and its rates, target, credentials, the proxy wanting them, reply
# code and address type, cuts, ending).
SOCKS = {
    "plain-close": layer_seed(200, [0] * 40),
    "auth-limited-cuts": layer_seed(3000, [1, 0, 1, 1, 1, 1, 0, 2, 9, 1, 2, 3, 5, 8, 13, 21, 1, 1, 1, 1] * 3),
    "name-byte-by-byte-pop": layer_seed(1500, [1] * 60),
    "refused": layer_seed(100, [0, 0, 1, 0, 0, 0, 5, 0, 0, 1, 1, 1, 1] * 3),
    "empty": b"",
}
for name, data in SOCKS.items():
    write("fuzz_socks", name, data)
