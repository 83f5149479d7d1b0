"""The event source mappings of one Hearth server: their durable records, their state machine in
motion, and one poller per enabled mapping.

It owns which pollers run. API calls (through the provider) write the caller's intent and a
transitional state (Creating, Enabling, Disabling, Updating, Deleting) and return at once, as AWS
does; a settle task per mapping then stops or (re)starts its poller and writes the settled state
(Enabled / Disabled) or removes the mapping. Settles of one mapping are serialized. At start, every
stored mapping is settled (a crash mid-transition finishes it). It never validates API input and
never touches a queue or stream itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping as MappingOf
from typing import Protocol

from hearth.esm.kinesis_poller import Deliver, KinesisPoller
from hearth.esm.model import DELETING, DISABLED, ENABLED, Mapping
from hearth.esm.sqs_poller import SqsPoller
from hearth.esm.store import MappingStore
from hearth.esm.stream_source import StreamSource
from hearth.esm.target import Invoke
from hearth.services.kinesis.streams import StreamService
from hearth.services.sqs.queues import QueueService

log = logging.getLogger(__name__)

FOLLOW_S = 1.0  # cluster: how often the pollers' lease holder compares its pollers with the stored mappings

SourceOpener = Callable[[str], StreamSource]  # a stream source by its ARN (kinds other than sqs/kinesis)


class Poller(Protocol):
    def start(self) -> None: ...
    async def stop(self) -> None: ...
    def statistics(self) -> dict[str, int]: ...


class MappingManager:
    def __init__(self, store: MappingStore, queues: QueueService, streams: StreamService, invoke: Invoke,
                 deliver: Deliver, *, clock: Callable[[], float] = time.time,
                 sqs_poll_wait_s: float | None = None,
                 stream_sources: MappingOf[str, SourceOpener] | None = None,
                 gate: Callable[[], bool] | None = None) -> None:
        self.store = store
        # In a cluster: whether this node runs the pollers now (it holds their lease); None: always. The
        # holder follows the stored mappings (`_follow`), so mappings changed through any node are polled
        # here, and a node that loses the lease stops its pollers within FOLLOW_S.
        self._gate = gate
        self._follower: asyncio.Task[None] | None = None
        self._started_with: dict[str, tuple[object, ...]] = {}
        self._queues = queues
        self._streams = streams
        self._invoke = invoke
        self._deliver = deliver
        self._clock = clock
        self._sqs_poll_wait_s = sqs_poll_wait_s
        self._stream_sources = dict(stream_sources or {})
        self._pollers: dict[str, Poller] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: dict[str, str] = {}
        self._started = False

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        for mapping in self.store.list():
            self.settle(mapping.uuid)
        if self._gate is not None:
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    def _active(self) -> bool:
        return self._gate is None or self._gate()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                self.reconcile()
            except Exception:  # a database outage: try again at the next turn
                log.warning("following the event source mappings failed", exc_info=True)

    def reconcile(self) -> None:
        """Cluster: run exactly the pollers the stored mappings call for while this node holds the lease,
        none while it does not."""
        if not self._active():
            for uuid in list(self._pollers):
                self.settle(uuid)  # stops it (and starts nothing while inactive)
            return
        stored = {m.uuid: m for m in self.store.list()}
        for uuid in set(stored) | set(self._pollers):
            mapping = stored.get(uuid)
            running = uuid in self._pollers
            if mapping is None or mapping.fires != running or (
                    running and self._started_with.get(uuid) != _poller_inputs(mapping)):
                self.settle(uuid)

    async def stop(self) -> None:
        """Stop every poller (first in the server's shutdown: no batch starts into a closing invoker)."""
        self._started = False
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        pollers, self._pollers = list(self._pollers.values()), {}
        await asyncio.gather(*(p.stop() for p in pollers), return_exceptions=True)

    async def wait_settled(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- what the provider calls --------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def save(self, mapping: Mapping) -> Mapping:
        """Store a mapping in a transitional state and settle it in the background."""
        self.store.put(mapping)
        self.settle(mapping.uuid)
        return mapping

    def settle(self, uuid: str) -> None:
        if not self._started:
            return
        task = asyncio.get_running_loop().create_task(self._settle(uuid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, uuid: str) -> None:
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        async with lock:
            mapping = self.store.get(uuid)
            poller = self._pollers.pop(uuid, None)
            if poller is not None:
                await poller.stop()
            if mapping is None:
                return
            if mapping.state == DELETING:
                self.store.delete(uuid)
                self._locks.pop(uuid, None)
                self._results.pop(uuid, None)
                return
            target = ENABLED if mapping.enabled else DISABLED
            if mapping.state != target:
                mapping = mapping.moved(target)
                self.store.put(mapping)
            if mapping.fires and self._active():
                self._start_poller(mapping)

    def _start_poller(self, mapping: Mapping) -> None:
        def on_result(result: str, uuid: str = mapping.uuid) -> None:
            if self._results.get(uuid) != result:
                self._results[uuid] = result
                try:
                    self.store.set_result(uuid, result)
                except Exception:  # the store closing during shutdown must not kill a poller
                    log.debug("could not record the processing result of %s", uuid, exc_info=True)

        poller: Poller
        if mapping.kind == "sqs":
            kwargs = {} if self._sqs_poll_wait_s is None else {"poll_wait_s": self._sqs_poll_wait_s}
            poller = SqsPoller(mapping, self._queues, self._invoke, on_result=on_result, **kwargs)
        else:
            opener = self._stream_sources.get(mapping.kind)
            source = opener(mapping.source_arn) if opener is not None else self._streams
            poller = KinesisPoller(mapping, source, self.store, self._invoke, self._deliver,
                                   on_result=on_result, clock=self._clock)
        poller.start()
        self._pollers[mapping.uuid] = poller
        self._started_with[mapping.uuid] = _poller_inputs(mapping)

    # -- reads --------------------------------------------------------------------------------------

    def get(self, uuid: str) -> Mapping | None:
        return self.store.get(uuid)

    def list(self, account: str, region: str) -> list[Mapping]:
        return self.store.list(account, region)

    def touch(self, mapping: Mapping, state: str, **changes: object) -> Mapping:
        return mapping.moved(state, last_modified=self._clock(), **changes)

    def replace(self, mapping: Mapping, **changes: object) -> Mapping:
        return dataclasses.replace(mapping, **changes)  # type: ignore[arg-type]

    def stream_exists(self, kind: str, arn: str) -> bool:
        """Whether a stream of a kind served by `stream_sources` (e.g. a DynamoDB stream) exists."""
        opener = self._stream_sources.get(kind)
        return opener is not None and opener(arn).shard_count() is not None

    def poller(self, uuid: str) -> Poller | None:
        return self._pollers.get(uuid)

    def statistics(self) -> dict[str, object]:
        return {"mappings": len(self.store.list()), "running": len(self._pollers),
                "pollers": {uuid: p.statistics() for uuid, p in self._pollers.items()}}


def _poller_inputs(mapping: Mapping) -> tuple[object, ...]:
    """What a running poller was built from: a stored mapping that differs was changed (by any node)."""
    return (mapping.source_arn, mapping.function_arn, mapping.config, mapping.last_modified)
