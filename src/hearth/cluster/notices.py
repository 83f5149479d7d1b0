"""Wake-ups between nodes through PostgreSQL's LISTEN/NOTIFY: "something changed on this queue, look
again" sent by the node that changed it to every node that may be waiting on it.

    notices.on("sqs", callback)     callback(key) runs on the event loop when another node announces
    notices.announce("sqs", key)    after the change committed
    notices.start() / close()

It owns one connection to send (`pg_notify`) and one thread that listens on its own connection and
hands each notice to the event loop. A notice is a hint, never the state: a waiter that receives one
re-reads the database, and a notice lost while a connection is re-made costs only the waiter's own
fallback re-check (`QueueService(recheck_s=...)`). It never raises to its callers: an announce that
cannot be sent is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from hearth.store.postgres import PostgresEngine

log = logging.getLogger(__name__)

CHANNEL = "hearth_notices"
POLL_S = 0.5  # how often the listening thread looks whether it should stop
RECONNECT_S = 1.0


class ClusterNotices:
    def __init__(self, engine: PostgresEngine, node_id: str) -> None:
        self._engine = engine
        self._node_id = node_id
        self._callbacks: dict[str, Callable[[str], object]] = {}
        self._send_lock = threading.Lock()
        self._sender: psycopg.Connection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.received = 0

    def on(self, topic: str, callback: Callable[[str], object]) -> None:
        self._callbacks[topic] = callback

    def announce(self, topic: str, key: str) -> None:
        """Tell the other nodes that `key` of `topic` changed (call after the change committed)."""
        payload = f"{self._node_id}\x1f{topic}\x1f{key}"
        with self._send_lock:
            try:
                if self._sender is None or self._sender.closed:
                    self._sender = self._engine.raw_connection()
                self._sender.execute("SELECT pg_notify($1, $2)", (CHANNEL, payload))
                self.sent += 1
            except Exception:  # a hint lost: the waiters' own re-check finds the change
                log.warning("cluster: could not announce %s %s", topic, key, exc_info=True)
                if self._sender is not None:
                    self._sender.close()
                self._sender = None

    def start(self) -> None:
        """Listen from now on (on a thread of its own); returns once the first LISTEN is in place or the
        database could not be reached (the thread keeps trying)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._listen, name="hearth-cluster-notices", daemon=True)
        self._thread.start()
        self._listening.wait(5.0)

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._send_lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._engine.raw_connection() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=POLL_S):
                            self._dispatch(notice.payload)
            except Exception:
                self._listening.set()  # start() need not wait for a database that is away
                if not self._stopping.is_set():
                    log.warning("cluster: listening for notices failed; again in %.0f s", RECONNECT_S,
                                exc_info=True)
                    self._stopping.wait(RECONNECT_S)

    def _dispatch(self, payload: str) -> None:
        try:
            node_id, topic, key = payload.split("\x1f", 2)
        except ValueError:
            return
        callback = self._callbacks.get(topic)
        if node_id == self._node_id or callback is None or self._loop is None:
            return  # its own change already woke its own waiters
        self.received += 1
        try:
            self._loop.call_soon_threadsafe(callback, key)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass
