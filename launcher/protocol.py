"""The launcher's wire protocol: one length-prefixed JSON message per send, over a Unix socket.

    send_message(sock, {"argv": [...], "cwd": ..., "env": {...}}, fds=(0, 1, 2))   # client
    request, fds = recv_message(conn, with_fds=True)                                # server

A message is a 4-byte big-endian length and that many bytes of JSON. The client's request carries
its stdin / stdout / stderr as SCM_RIGHTS descriptors; the server answers {"pid": N}, then
{"exit": code} or {"exit": 128 + sig, "signal": sig} when the trial ends.
"""

from __future__ import annotations

import json
import socket
import struct

HEADER = struct.Struct("!I")
MAX_FDS = 3


def send_message(sock: socket.socket, message: dict, fds=()) -> None:
    payload = json.dumps(message).encode()
    data = HEADER.pack(len(payload)) + payload
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def recv_message(sock: socket.socket, with_fds: bool = False) -> tuple[dict, list[int]]:
    """(message, descriptors). ConnectionError when the peer closed first."""
    if with_fds:
        data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size + 65536, MAX_FDS)
        if len(data) < HEADER.size:
            raise ConnectionError("short request")
        (size,) = HEADER.unpack(data[: HEADER.size])
        data = data[HEADER.size :]
        data += recv_exact(sock, size - len(data)) if len(data) < size else b""
        return json.loads(data[:size]), fds
    (size,) = HEADER.unpack(recv_exact(sock, HEADER.size))
    return json.loads(recv_exact(sock, size)), []
