"""Message move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask): redriving a
dead-letter queue's messages to a destination queue, or back to the queues they came from.

It owns the `sqs_move_tasks` rows (in the "sqs" ComponentDb, see `queues.MIGRATIONS`) and the asyncio
tasks that move messages, at most `MaxNumberOfMessagesPerSecond` a second. Moving one message is one
short transaction through `QueueService.move_message`; it never holds the database while it sleeps.
It never renders API shapes (the provider does) and never parses queue URLs.

A task moves the messages that were available in the source when it started (AWS's
ApproximateNumberOfMessagesToMove). A server stopped mid-task leaves it RUNNING in the database; it goes
on when its source is next used through these operations (start, list, cancel).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.sqs import errors
from hearth.services.sqs.queues import QueueService, query_code
from hearth.store.engine import Row

# Without MaxNumberOfMessagesPerSecond, messages move in batches of this many per event-loop turn.
_UNTHROTTLED_BATCH = 100


@dataclass(frozen=True)
class MoveTask:
    task_id: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    status: str
    to_move: int
    moved: int
    started: float
    failure: str | None

    @property
    def handle(self) -> str:
        # AWS's handle: base64 of a small JSON document naming the task and its source.
        doc = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn}, separators=(",", ":"))
        return base64.b64encode(doc.encode()).decode()


def _task(row: Row) -> MoveTask:
    return MoveTask(task_id=row["task_id"], source_arn=row["source_arn"], destination_arn=row["destination_arn"],
                    max_per_second=row["max_per_second"], status=row["status"], to_move=row["to_move"],
                    moved=row["moved"], started=row["started"], failure=row["failure"])


def not_found(parameter: str) -> AwsError:
    return errors.sqs_error("ResourceNotFoundException", "ResourceNotFoundException",
                            f"The resource that you specified for the {parameter} parameter doesn't exist.", 404)


class MoveTasks:
    def __init__(self, queues: QueueService) -> None:
        self.queues = queues
        self._running: dict[str, asyncio.Task[None]] = {}

    # -- the API's rules --------------------------------------------------------------------------

    def start(self, account: str, source_arn: str, destination_arn: str | None,
              max_per_second: int | None) -> MoveTask:
        source = self.queues.by_arn(source_arn)
        if source is None or source.account != account:
            raise not_found("SourceArn")
        if not self.queues.dead_letter_sources(source):
            raise errors.invalid_parameter("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn:
            destination = self.queues.by_arn(destination_arn)
            if destination is None or destination.account != account:
                raise not_found("DestinationArn")
        if max_per_second is not None and not 1 <= max_per_second <= 500:
            raise errors.invalid_parameter_value("MaxNumberOfMessagesPerSecond", max_per_second,
                                                 "Must be between 1 and 500, if provided.")
        self._resume(source_arn)
        if any(t.status == "RUNNING" for t in self._tasks(source_arn, 10)):
            raise errors.invalid_parameter("There is already a task running. Only one active task is allowed for "
                                           "a source queue arn at a given time.")
        to_move = self.queues.counts(source)["ApproximateNumberOfMessages"]
        task = MoveTask(str(uuid.uuid4()), source_arn, destination_arn or None, max_per_second, "RUNNING",
                        to_move, 0, self.queues.clock(), None)
        with self.queues.db.tx() as db:
            db.execute("INSERT INTO sqs_move_tasks (task_id, source_arn, destination_arn, max_per_second, status, "
                       "to_move, moved, started, failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (task.task_id, task.source_arn, task.destination_arn, task.max_per_second, task.status,
                        task.to_move, task.moved, task.started, task.failure))
        self._launch(task)
        return task

    def list_tasks(self, account: str, source_arn: str, max_results: int | None) -> list[MoveTask]:
        source = self.queues.by_arn(source_arn)
        if source is None or source.account != account:
            raise not_found("SourceArn")
        limit = 1 if max_results is None else max_results
        if not 1 <= limit <= 10:
            raise errors.invalid_parameter_value("MaxResults", limit, "Must be between 1 and 10, if provided.")
        self._resume(source_arn)
        return self._tasks(source_arn, limit)

    def cancel(self, account: str, handle: str) -> MoveTask:
        try:
            doc = json.loads(base64.b64decode(handle, validate=True))
            task_id, source_arn = str(doc["taskId"]), str(doc["sourceArn"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise errors.invalid_parameter("Value for parameter TaskHandle is invalid.") from None
        source = self.queues.by_arn(source_arn)
        if source is None or source.account != account:
            raise not_found("SourceArn")
        rows = self.queues.db.query("SELECT * FROM sqs_move_tasks WHERE task_id = ? AND source_arn = ?",
                                    (task_id, source_arn))
        if not rows:
            raise errors.sqs_error("ResourceNotFoundException", "ResourceNotFoundException", "Task does not exist.",
                                   404)
        task = _task(rows[0])
        if task.status != "RUNNING":
            raise errors.invalid_parameter("Only active tasks can be cancelled.")
        running = self._running.pop(task_id, None)
        if running is not None:
            running.cancel()
        self._finish(task_id, "CANCELLED")
        return task

    # -- moving -----------------------------------------------------------------------------------

    def _tasks(self, source_arn: str, limit: int) -> list[MoveTask]:
        rows = self.queues.db.query("SELECT * FROM sqs_move_tasks WHERE source_arn = ? ORDER BY started DESC, "
                                    "task_id LIMIT ?", (source_arn, limit))
        return [_task(r) for r in rows]

    def _resume(self, source_arn: str) -> None:
        for task in self._tasks(source_arn, 10):
            if task.status == "RUNNING" and task.task_id not in self._running:
                self._launch(task)

    def _launch(self, task: MoveTask) -> None:
        runner = asyncio.get_running_loop().create_task(self._run(task), name=f"sqs-move-{task.task_id}")
        self._running[task.task_id] = runner
        runner.add_done_callback(lambda _: self._running.pop(task.task_id, None))

    def _finish(self, task_id: str, status: str, failure: str | None = None) -> None:
        with self.queues.db.tx() as db:
            db.execute("UPDATE sqs_move_tasks SET status = ?, failure = ? WHERE task_id = ? AND status = 'RUNNING'",
                       (status, failure, task_id))

    async def _run(self, task: MoveTask) -> None:
        moved = task.moved
        per_turn = 1 if task.max_per_second else _UNTHROTTLED_BATCH
        while moved < task.to_move and not self.queues.closing:
            for _ in range(per_turn):
                if moved >= task.to_move:
                    break
                try:
                    done = self.queues.move_message(task.source_arn, task.destination_arn)
                except AwsError as err:
                    self._finish(task.task_id, "FAILED", query_code(err))
                    return
                if not done:  # nothing left to move (received or deleted meanwhile)
                    moved = task.to_move
                    break
                moved += 1
                with self.queues.db.tx() as db:
                    db.execute("UPDATE sqs_move_tasks SET moved = ? WHERE task_id = ?", (moved, task.task_id))
            await asyncio.sleep(1.0 / task.max_per_second if task.max_per_second else 0)
        if moved >= task.to_move and not self.queues.closing:  # stopping: it completes when resumed
            self._finish(task.task_id, "COMPLETED")


def task_entry(task: MoveTask) -> dict[str, Any]:
    """One ListMessageMoveTasks result, as AWS shapes it (the handle only while RUNNING)."""
    out: dict[str, Any] = {"SourceArn": task.source_arn, "Status": task.status,
                           "ApproximateNumberOfMessagesMoved": task.moved,
                           "ApproximateNumberOfMessagesToMove": task.to_move,
                           "StartedTimestamp": int(task.started * 1000)}
    if task.status == "RUNNING":
        out["TaskHandle"] = task.handle
    if task.destination_arn:
        out["DestinationArn"] = task.destination_arn
    if task.max_per_second:
        out["MaxNumberOfMessagesPerSecond"] = task.max_per_second
    if task.failure:
        out["FailureReason"] = task.failure
    return out
