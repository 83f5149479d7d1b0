from __future__ import annotations

from pathlib import Path

from tests.unit.esm.conftest import FakeDeliver, FakeInvoke, until

from hearth.esm.manager import MappingManager
from hearth.esm.model import CREATING, DELETING, DISABLED, DISABLING, ENABLED, Mapping, MappingConfig
from hearth.esm.store import MappingStore
from hearth.services.kinesis.streams import StreamService
from hearth.services.sqs.queues import OutgoingMessage, QueueService

ACCOUNT, REGION = "000000000000", "us-east-1"


def _mapping(arn: str, enabled: bool = True, state: str = CREATING) -> Mapping:
    return Mapping("m-1", ACCOUNT, REGION, arn, "sqs", "arn:aws:lambda:us-east-1:0:function:f", enabled, state,
                   MappingConfig(batch_size=10), 1.0)


async def test_states_settle_and_only_enabled_mappings_fire(tmp_path: Path, queues: QueueService,
                                                             streams: StreamService) -> None:
    store = MappingStore(tmp_path)
    queue = queues.create_queue(ACCOUNT, REGION, "q", {})
    invoke = FakeInvoke()
    manager = MappingManager(store, queues, streams, invoke, FakeDeliver(), sqs_poll_wait_s=0.05)
    manager.start()
    manager.save(_mapping(queue.arn, enabled=False))
    await manager.wait_settled()
    assert store.get("m-1").state == DISABLED and manager.poller("m-1") is None  # type: ignore[union-attr]
    queues.send(queue, OutgoingMessage(body="x"))
    m = store.get("m-1")
    assert m is not None
    manager.save(manager.touch(m, "Enabling", enabled=True))
    await manager.wait_settled()
    assert store.get("m-1").state == ENABLED  # type: ignore[union-attr]
    await until(lambda: len(invoke.batches) == 1)
    m = store.get("m-1")
    assert m is not None
    manager.save(manager.touch(m, DISABLING, enabled=False))
    await manager.wait_settled()
    assert store.get("m-1").state == DISABLED and manager.poller("m-1") is None  # type: ignore[union-attr]
    m = store.get("m-1")
    assert m is not None
    manager.save(manager.touch(m, DELETING))
    await manager.wait_settled()
    assert store.get("m-1") is None
    await manager.stop()
    store.close()


async def test_a_restart_finishes_interrupted_transitions(tmp_path: Path, queues: QueueService,
                                                          streams: StreamService) -> None:
    store = MappingStore(tmp_path)
    queue = queues.create_queue(ACCOUNT, REGION, "q", {})
    store.put(_mapping(queue.arn, enabled=True, state=CREATING))
    manager = MappingManager(store, queues, streams, FakeInvoke(), FakeDeliver(), sqs_poll_wait_s=0.05)
    manager.start()
    await manager.wait_settled()
    assert store.get("m-1").state == ENABLED and manager.poller("m-1") is not None  # type: ignore[union-attr]
    await manager.stop()
    store.close()


async def test_in_a_cluster_only_the_lease_holder_polls_and_it_follows_other_nodes_changes(
        tmp_path: Path, queues: QueueService, streams: StreamService) -> None:
    """Two managers on one store (two nodes): the one whose gate is open runs the poller, including for
    a mapping saved through the other; losing the gate stops it, gaining it starts it."""
    store = MappingStore(tmp_path)
    queue = queues.create_queue(ACCOUNT, REGION, "q", {})
    holder = {"a": False, "b": True}
    a = MappingManager(store, queues, streams, FakeInvoke(), FakeDeliver(), sqs_poll_wait_s=0.05,
                       gate=lambda: holder["a"])
    b = MappingManager(store, queues, streams, FakeInvoke(), FakeDeliver(), sqs_poll_wait_s=0.05,
                       gate=lambda: holder["b"])
    a.start()
    b.start()
    a.save(_mapping(queue.arn, enabled=True))  # through the node that does not poll
    await a.wait_settled()
    assert store.get("m-1").state == ENABLED and a.poller("m-1") is None  # type: ignore[union-attr]
    b.reconcile()
    await b.wait_settled()
    assert b.poller("m-1") is not None
    holder.update(a=True, b=False)  # the lease moved
    b.reconcile()
    a.reconcile()
    await b.wait_settled()
    await a.wait_settled()
    assert (a.poller("m-1") is not None, b.poller("m-1") is None) == (True, True)
    await a.stop()
    await b.stop()
    store.close()
