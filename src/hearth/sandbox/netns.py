"""Connecting to a listener inside a sandbox's own network (the Telemetry API's destinations).

It owns one thing: a TCP connection to 127.0.0.1:<port> as seen from inside the network namespace of
a sandbox process. An isolated sandbox has its own loopback, unreachable from the host; a socket
created while the creating thread is in that namespace (setns) belongs to it for its whole life, so
one worker thread enters the namespace, creates the socket and comes back; the loop then connects it.
A sandbox that shares the host's network (the process backend) gets a plain connection.

It never leaves a thread in a foreign namespace: the worker returns to Hearth's own namespace before
it takes the next job, and stops Hearth if it cannot (that thread would be unsafe to reuse).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import os
import socket

CLONE_NEWNET = 0x40000000
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-netns")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _same_netns(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return True  # no namespace to enter (not Linux, or the process is gone: connecting fails anyway)


def _socket_in(pid: int) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    os._exit(70)  # this thread would create every later socket in the sandbox's network
        finally:
            os.close(target)
    finally:
        os.close(own)
    return sock


async def open_connection(pid: int, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to 127.0.0.1:`port` in the network of process `pid`. Raises OSError."""
    if _same_netns(pid):
        return await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(_EXECUTOR, _socket_in, pid)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
