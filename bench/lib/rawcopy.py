#!/usr/bin/env python3
"""The yardstick for the resync rate: copies the first BYTES of a file over one TCP
connection into an existing file, as fast as plain sockets go (sendfile on the sending
side, 4 MiB receives and writes on the other), with no framing, checksums or
authentication.  bench/ha compares the HA resync with it.

  rawcopy.py recv LISTEN-ADDR:PORT FILE      serve one connection; prints "BYTES SECONDS"
  rawcopy.py send FROM-ADDR TO-ADDR:PORT FILE BYTES

The receiver overwrites FILE in place (no truncation), like a resync overwrites an
allocated replica, and times from the connection's first byte to its last write."""
import os
import socket
import sys
import time

CHUNK = 4 << 20


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def big_buffers(sock):
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)


def recv(listen, path):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    big_buffers(srv)
    srv.bind(addr(listen))
    srv.listen(1)
    # The sender waits for this line: the port is open.
    print("listening", flush=True)
    conn, _ = srv.accept()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    start = None
    fd = os.open(path, os.O_WRONLY)
    try:
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            if start is None:
                start = time.monotonic()
            os.pwrite(fd, view[:n], total)
            total += n
    finally:
        os.close(fd)
        conn.close()
    secs = time.monotonic() - start if start is not None else 0.0
    print(f"{total} {secs:.6f}", flush=True)


def send(source, dest, path, count):
    sock = socket.socket()
    big_buffers(sock)
    sock.bind((source, 0))
    sock.connect(addr(dest))
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while offset < count:
            n = os.sendfile(sock.fileno(), fd, offset, min(count - offset, 1 << 30))
            if n == 0:
                sys.exit(f"rawcopy: {path} ends at {offset} bytes")
            offset += n
    finally:
        os.close(fd)
        sock.close()


def main(argv):
    if len(argv) == 3 and argv[0] == "recv":
        recv(argv[1], argv[2])
    elif len(argv) == 5 and argv[0] == "send":
        send(argv[1], argv[2], argv[3], int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
