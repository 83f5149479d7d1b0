"""The durable async queue with a manual clock: retries, event age, throttles, destinations, DLQ,
recursive loops, restarts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.async_.helpers import (
    ACCOUNT,
    DLQ_ARN,
    QUEUE_ARN,
    REGION,
    FakeFunctions,
    Policies,
    Rig,
    ScriptedInvoker,
    fails,
    make_rig,
    ok,
    throttled,
)

from hearth.events import lineage
from hearth.events.delivery import Message
from hearth.invoke.async_queue import AsyncPolicy, ManualClock
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.request import InvokeOutcome

FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"


@pytest.fixture
async def rigs(tmp_path: Path) -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        await rig.queue.close()


async def started(rigs: list[Rig], tmp_path: Path, invoker: ScriptedInvoker, **kw: object) -> Rig:
    rig = make_rig(tmp_path / "data", invoker, **kw)  # type: ignore[arg-type]
    rigs.append(rig)
    rig.queue.start()
    return rig


async def test_event_is_stored_before_it_runs_and_success_goes_to_on_success(rigs: list[Rig], tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "data", ScriptedInvoker(ok({"answer": 42})))
    rigs.append(rig)
    rig.policies.policy = AsyncPolicy(on_success=QUEUE_ARN)
    request_id = rig.enqueue(request_id="req-1")
    assert request_id == "req-1"
    assert rig.queue.pending() == 1  # committed before anything runs
    rig.queue.start()
    await rig.queue.wait_idle()
    assert [c.request_id for c in rig.invoker.calls] == ["req-1"]
    assert rig.queue.pending() == 0
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {"requestId": "req-1", "functionArn": f"{FN_ARN}:$LATEST",
                                        "condition": "Success", "approximateInvokeCount": 1}
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"answer": 42}
    assert str(record["timestamp"]).endswith("Z")
    assert rig.queue.statistics()["DestinationDeliveries"] == 1


async def test_function_errors_are_retried_after_one_then_two_minutes(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(fails("bad input")))
    rig.policies.policy = AsyncPolicy(on_failure=QUEUE_ARN)
    rig.functions.dead_letters["fn"] = DLQ_ARN
    rig.enqueue(request_id="req-2")
    await rig.queue.wait_idle()
    assert len(rig.invoker.calls) == 1
    await rig.advance(59)
    assert len(rig.invoker.calls) == 1
    await rig.advance(1)
    assert len(rig.invoker.calls) == 2
    await rig.advance(119)
    assert len(rig.invoker.calls) == 2
    await rig.advance(1)
    assert len(rig.invoker.calls) == 3
    assert {c.request_id for c in rig.invoker.calls} == {"req-2"}  # retries keep the request id
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "RetriesExhausted"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 3  # type: ignore[index]
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"] == {"errorMessage": "bad input", "errorType": "Exception"}
    [(_, dlq)] = [(a, m) for a, m in rig.sqs.received if a == DLQ_ARN]
    assert json.loads(dlq.body) == {"n": 1}  # the original event
    assert dlq.attributes == {
        "RequestID": {"DataType": "String", "StringValue": "req-2"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "bad input"},
    }
    assert rig.queue.pending() == 0
    assert rig.queue.statistics()["failed"] == {"RetriesExhausted": 1}


async def test_zero_retries_fails_after_one_attempt(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(fails()))
    rig.policies.policy = AsyncPolicy(max_retries=0, on_failure=QUEUE_ARN)
    rig.enqueue()
    await rig.queue.wait_idle()
    assert len(rig.invoker.calls) == 1
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["approximateInvokeCount"] == 1  # type: ignore[index]


async def test_a_retry_after_the_maximum_age_reports_event_age_exceeded(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(fails()))
    rig.policies.policy = AsyncPolicy(max_age_s=60, on_failure=QUEUE_ARN)
    rig.enqueue()
    await rig.queue.wait_idle()
    await rig.advance(60)
    assert len(rig.invoker.calls) == 1
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 1  # type: ignore[index]


async def test_throttles_back_off_and_do_not_count_as_invocations(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(throttled(), throttled(), throttled(), ok("done")))
    rig.policies.policy = AsyncPolicy(on_success=QUEUE_ARN)
    rig.enqueue()
    await rig.queue.wait_idle()
    assert len(rig.invoker.calls) == 1
    await rig.advance(1)  # first back-off: 1 s
    assert len(rig.invoker.calls) == 2
    await rig.advance(1.5)  # second: 2 s
    assert len(rig.invoker.calls) == 2
    await rig.advance(0.5)
    assert len(rig.invoker.calls) == 3
    await rig.advance(4)  # third: 4 s
    assert len(rig.invoker.calls) == 4
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["approximateInvokeCount"] == 1  # type: ignore[index]
    assert rig.queue.statistics()["throttled"] == 3


async def test_throttled_until_too_old_expires_without_a_response(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(throttled()))
    rig.policies.policy = AsyncPolicy(max_age_s=60, on_failure=QUEUE_ARN)
    rig.functions.dead_letters["fn"] = DLQ_ARN
    rig.enqueue()
    for _ in range(12):
        await rig.advance(16)
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 0  # type: ignore[index]
    assert "responseContext" not in record
    [dlq] = [m for a, m in rig.sqs.received if a == DLQ_ARN]
    assert dlq.attributes["ErrorCode"]["StringValue"] == "429"
    assert rig.queue.pending() == 0


async def test_a_throttled_event_runs_as_soon_as_an_invocation_of_its_function_ends(
        rigs: list[Rig], tmp_path: Path) -> None:
    # Not at the end of its back-off: a queue of a function reserved at 1 drains one after another
    # (LocalStack's test_async_invoke_queue_upon_function_update).
    rig = await started(rigs, tmp_path, ScriptedInvoker(throttled(), ok("a"), ok("b")))
    first = rig.enqueue(payload=b'{"n": 1}')
    await rig.queue.wait_idle()
    assert len(rig.invoker.calls) == 1 and rig.queue.pending() == 1  # throttled, backing off
    rig.enqueue(payload=b'{"n": 2}')
    await rig.queue.wait_idle()  # the clock has not moved: no back-off ended
    assert [c.request_id for c in rig.invoker.calls][2] == first and rig.queue.pending() == 0


async def test_zero_reserved_concurrency_fails_at_once(rigs: list[Rig], tmp_path: Path) -> None:
    # As AWS (LocalStack's test_reserved_concurrency): no retry, condition ZeroReservedConcurrency.
    def refused() -> InvokeOutcome:
        raise Throttled(ThrottleReason.RESERVED, reserved=0)

    rig = await started(rigs, tmp_path, ScriptedInvoker(refused))
    rig.policies.policy = AsyncPolicy(on_failure=QUEUE_ARN)
    rig.enqueue()
    await rig.queue.wait_idle()
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 0  # type: ignore[index]
    assert "responseContext" not in record and len(rig.invoker.calls) == 1 and rig.queue.pending() == 0


async def test_invocation_trace_carries_incremented_lineage(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    rig.enqueue(trace=lineage.next_hop(incoming, FN_ARN))
    await rig.queue.wait_idle()
    trace = rig.invoker.calls[0].trace_id
    assert trace is not None and "Root=1-5759e988-bd862e3fe1be46a994272793" in trace
    assert lineage.hops(trace, FN_ARN) == 2


async def test_recursive_loop_is_stopped_and_reported(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    rig.policies.policy = AsyncPolicy(on_failure=QUEUE_ARN)
    rig.functions.dead_letters["fn"] = DLQ_ARN
    header: str | None = None
    for _ in range(lineage.MAX_HOPS):
        header = lineage.next_hop(header, FN_ARN)
    rig.enqueue(trace=header)
    await rig.queue.wait_idle()
    assert rig.invoker.calls == []
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "RecursiveInvocationException"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 0  # type: ignore[index]
    [dlq] = [m for a, m in rig.sqs.received if a == DLQ_ARN]
    assert dlq.attributes["ErrorMessage"]["StringValue"].startswith("RecursiveInvocationException")
    assert rig.queue.statistics()["recursive_stopped"] == 1


async def test_recursion_allowed_lets_the_loop_run(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    rig.policies.allow_recursion = True
    header: str | None = None
    for _ in range(lineage.MAX_HOPS + 3):
        header = lineage.next_hop(header, FN_ARN)
    rig.enqueue(trace=header)
    await rig.queue.wait_idle()
    assert len(rig.invoker.calls) == 1


async def test_function_to_function_loop_through_the_router_stops_at_sixteen(rigs: list[Rig], tmp_path: Path) -> None:
    """A function whose OnSuccess destination is itself (as a function calling itself asynchronously)."""
    functions = FakeFunctions()
    functions.add("fn")
    invoker = ScriptedInvoker(ok("again"))
    rig = await started(rigs, tmp_path, invoker, functions=functions)
    rig.policies.policy = AsyncPolicy(on_success=FN_ARN, on_failure=QUEUE_ARN)
    rig.enqueue()
    for _ in range(40):
        await rig.queue.wait_idle()
    assert len(invoker.calls) == lineage.MAX_HOPS
    [record] = rig.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["condition"] == "RecursiveInvocationException"  # type: ignore[index]


async def test_router_lambda_handler_enqueues_with_the_message_trace(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    await rig.router.deliver(FN_ARN, Message(body='{"Records": []}', trace_header="Root=1-abc-def;Sampled=0"))
    await rig.queue.wait_idle()
    [call] = rig.invoker.calls
    assert call.payload == b'{"Records": []}'
    assert call.trace_id is not None and "Root=1-abc-def" in call.trace_id


async def test_router_lambda_handler_refuses_a_missing_function(rigs: list[Rig], tmp_path: Path) -> None:
    from hearth.events.delivery import DeliveryError

    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    with pytest.raises(DeliveryError) as exc:
        await rig.router.deliver(FN_ARN.replace(":fn", ":missing"), Message(body="{}"))
    assert exc.value.code == "ResourceNotFoundException"


async def test_failed_destination_is_counted_not_silent(rigs: list[Rig], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(fails()))
    rig.policies.policy = AsyncPolicy(max_retries=0, on_failure=QUEUE_ARN)
    rig.functions.dead_letters["fn"] = DLQ_ARN
    rig.sqs.fail = True
    rig.enqueue()
    await rig.queue.wait_idle()
    stats = rig.queue.statistics()
    assert stats["DestinationDeliveryFailures"] == 1
    assert stats["DeadLetterErrors"] == 1
    assert "no such queue" in caplog.text
    assert rig.queue.pending() == 0


async def test_deleted_function_drops_its_events(rigs: list[Rig], tmp_path: Path) -> None:
    rig = await started(rigs, tmp_path, ScriptedInvoker(fails()))
    rig.enqueue()
    await rig.queue.wait_idle()
    del rig.functions.versions["fn"]
    await rig.advance(60)
    assert len(rig.invoker.calls) == 1
    assert rig.queue.statistics()["dropped"] == 1
    assert rig.queue.pending() == 0


async def test_inactive_function_is_retried_as_a_system_error(rigs: list[Rig], tmp_path: Path) -> None:
    functions = FakeFunctions()
    functions.add("fn", state="Pending")
    rig = await started(rigs, tmp_path, ScriptedInvoker(ok()), functions=functions)
    rig.enqueue()
    await rig.queue.wait_idle()
    assert rig.invoker.calls == []
    functions.add("fn")
    await rig.advance(1)
    assert len(rig.invoker.calls) == 1


async def test_restart_resumes_stored_events(tmp_path: Path, rigs: list[Rig]) -> None:
    first = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    for i in range(5):
        first.enqueue(request_id=f"r{i}")
    await first.queue.close()  # never started: as if killed right after the 202s
    clock = ManualClock()
    second = await started(rigs, tmp_path, ScriptedInvoker(ok()), clock=clock)
    await second.queue.wait_idle()
    assert sorted(c.request_id or "" for c in second.invoker.calls) == [f"r{i}" for i in range(5)]
    assert second.queue.pending() == 0


async def test_restart_keeps_retry_counts(tmp_path: Path, rigs: list[Rig]) -> None:
    clock = ManualClock()
    policies = Policies()
    policies.policy = AsyncPolicy(on_failure=QUEUE_ARN)
    first = make_rig(tmp_path / "data", ScriptedInvoker(fails()), clock=clock, policies=policies)
    first.queue.start()
    first.enqueue()
    await first.queue.wait_idle()
    await first.advance(60)
    assert len(first.invoker.calls) == 2
    await first.queue.close()
    second = await started(rigs, tmp_path, ScriptedInvoker(fails()), clock=clock, policies=policies)
    await second.advance(120)
    assert len(second.invoker.calls) == 1
    [record] = second.sqs.bodies(QUEUE_ARN)
    assert record["requestContext"]["approximateInvokeCount"] == 3  # type: ignore[index]


async def test_restart_redelivers_an_outcome_without_running_again(tmp_path: Path, rigs: list[Rig]) -> None:
    first = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    first.enqueue(request_id="done-1")
    deliveries = [{"kind": "destination", "target": QUEUE_ARN, "body": '{"recorded": true}', "attributes": {},
                   "trace_header": None, "source_arn": None}]
    with first.queue._db.tx() as db:  # an outcome recorded just before a crash
        db.execute("UPDATE async_events SET stage = 'deliver', deliveries = ? WHERE id = 'done-1'",
                   (json.dumps(deliveries),))
    await first.queue.close()
    second = await started(rigs, tmp_path, ScriptedInvoker(ok()))
    await second.queue.wait_idle()
    assert second.invoker.calls == []
    assert second.sqs.bodies(QUEUE_ARN) == [{"recorded": True}]
    assert second.queue.pending() == 0


async def test_enqueue_is_idempotent_per_request_id(rigs: list[Rig], tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    rigs.append(rig)
    rig.enqueue(request_id="same")
    rig.enqueue(request_id="same")
    assert rig.queue.pending() == 1


async def test_enqueue_after_close_is_refused(tmp_path: Path) -> None:
    from hearth.invoke.errors import NotAccepting

    rig = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    await rig.queue.close()
    with pytest.raises(NotAccepting):
        rig.enqueue()
