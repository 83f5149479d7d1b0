"""The sandbox network's packet filter, driven as a hostile root inside a prepared namespace would.

A function runs without capabilities, so it cannot change its own address; these tests do what it
could if it could (root inside a namespace of the pool, through nsenter) and check that the filter,
not the function's good manners, holds: a spoofed source is dropped (and counted). Every packet stays
on the host (to the bridge's own address).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from tests.netns_hosts import unavailable_reason

from hearth.sandbox.network import EGRESS, NetworkPool, NetworkUnavailable

pytestmark = [pytest.mark.security]

SEND = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(3):
    s.sendto(b"spoofed", (sys.argv[2], 9))
'''


def _inside(fd: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/proc/self/fd/{fd}", *argv], pass_fds=(fd,), capture_output=True,
                          text=True, check=False)


def test_spoofed_sources_are_dropped() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)

    async def scenario() -> None:
        try:
            pool = await NetworkPool.open(f"itest{os.getpid():08x}", pool_size=1)
        except NetworkUnavailable as exc:
            pytest.skip(f"sandbox networking cannot be set up here: {exc}")
        try:
            lease = await pool.lease(EGRESS, "spoofer")
            assert lease is not None
            gateway = str(pool.egress_subnet.network_address + 1)
            other = str(pool.egress_subnet.network_address + 1000)  # another environment's address
            added = _inside(lease.fd, "ip", "addr", "add", f"{other}/32", "dev", "eth0")
            assert added.returncode == 0, added.stderr
            before = await asyncio.to_thread(pool.spoofed_packets)
            sent = _inside(lease.fd, sys.executable, "-c", SEND, other, gateway)
            assert sent.returncode == 0, sent.stderr
            deadline = time.monotonic() + 10
            while await asyncio.to_thread(pool.spoofed_packets) < before + 3:
                assert time.monotonic() < deadline, "the spoofed packets were not dropped by the filter"
                await asyncio.sleep(0.05)
            pool.release(lease)
        finally:
            await pool.close()

    asyncio.run(scenario())
