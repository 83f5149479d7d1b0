"""Message move tasks: redrive from a dead-letter queue, to a destination or back to the sources."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.aws.errors import AwsError
from hearth.services.sqs.move_tasks import MoveTasks, task_entry
from hearth.services.sqs.queues import OutgoingMessage, Queue, QueueService

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[QueueService]:
    service = QueueService(tmp_path)
    yield service
    service.close()


def _dead_lettered(svc: QueueService, count: int) -> tuple[Queue, Queue]:
    """A source queue whose `count` messages were moved to its dead-letter queue."""
    dlq = svc.create_queue(ACCOUNT, REGION, "dlq", {})
    source = svc.create_queue(ACCOUNT, REGION, "src", {"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1})})
    for i in range(count):
        svc.send(source, OutgoingMessage(body=f"m{i}", sender_id=ACCOUNT))
    svc.receive_now(source, 10, 0)
    assert svc.receive_now(source, 10, 0) == []
    assert svc.counts(dlq)["ApproximateNumberOfMessages"] == count
    return source, dlq


async def _settled(tasks: MoveTasks, source_arn: str) -> dict[str, object]:
    for _ in range(200):
        entry = task_entry(tasks.list_tasks(ACCOUNT, source_arn, None)[0])
        if entry["Status"] != "RUNNING":
            return entry
        await asyncio.sleep(0.01)
    raise AssertionError("the task did not finish")


async def test_move_back_to_the_source_queues(svc: QueueService) -> None:
    source, dlq = _dead_lettered(svc, 3)
    tasks = MoveTasks(svc)
    task = tasks.start(ACCOUNT, dlq.arn, None, None)
    assert json.loads(base64.b64decode(task.handle)) == {"taskId": task.task_id, "sourceArn": dlq.arn}
    entry = await _settled(tasks, dlq.arn)
    assert (entry["Status"], entry["ApproximateNumberOfMessagesMoved"], entry["ApproximateNumberOfMessagesToMove"]) \
        == ("COMPLETED", 3, 3)
    assert "TaskHandle" not in entry and "DestinationArn" not in entry
    moved = svc.receive_now(source, 10, 0, attribute_names=["All"])
    assert sorted(m["Body"] for m in moved) == ["m0", "m1", "m2"]
    assert all("DeadLetterQueueSourceArn" not in m["Attributes"] for m in moved)


async def test_failures_and_rules_recorded_by_aws(svc: QueueService) -> None:
    _, dlq = _dead_lettered(svc, 2)
    other = svc.create_queue(ACCOUNT, REGION, "other", {})
    tasks = MoveTasks(svc)
    with pytest.raises(AwsError, match="Source queue must be configured as a Dead Letter Queue"):
        tasks.start(ACCOUNT, other.arn, None, None)
    with pytest.raises(AwsError) as err:
        tasks.start(ACCOUNT, dlq.arn, other.arn + "x", None)
    assert (err.value.status, err.value.message) == (
        404, "The resource that you specified for the DestinationArn parameter doesn't exist.")
    task = tasks.start(ACCOUNT, dlq.arn, other.arn, 1)
    with pytest.raises(AwsError, match="There is already a task running"):
        tasks.start(ACCOUNT, dlq.arn, other.arn, 1)
    svc.delete_queue(other)
    entry = await _settled(tasks, dlq.arn)
    assert (entry["Status"], entry["FailureReason"]) == ("FAILED", "AWS.SimpleQueueService.NonExistentQueue")
    with pytest.raises(AwsError, match="Value for parameter TaskHandle is invalid"):
        tasks.cancel(ACCOUNT, "foobared")
    with pytest.raises(AwsError, match="Only active tasks can be cancelled"):
        tasks.cancel(ACCOUNT, task.handle)
