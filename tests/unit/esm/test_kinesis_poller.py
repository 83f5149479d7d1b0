from __future__ import annotations

import base64
import json
from typing import Any

from tests.unit.esm.conftest import FakeDeliver, FakeInvoke, until

from hearth.esm.kinesis_poller import KinesisPoller
from hearth.esm.model import ENABLED, Mapping, MappingConfig
from hearth.esm.store import MappingStore
from hearth.esm.target import InvokeResult
from hearth.services.kinesis.streams import StreamService, partition_hash

ACCOUNT, REGION = "000000000000", "us-east-1"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"


def _mapping(**cfg: Any) -> Mapping:
    config = MappingConfig(batch_size=cfg.pop("batch_size", 100), starting_position=cfg.pop("starting_position",
                                                                                            "TRIM_HORIZON"), **cfg)
    return Mapping("m-1", ACCOUNT, REGION, f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s", "kinesis", FN, True,
                   ENABLED, config, 0.0)


def _put(streams: StreamService, values: list[dict[str, Any]], key: str = "k") -> list[str]:
    stream = streams.get(ACCOUNT, REGION, "s")
    assert stream is not None
    out = streams.put(stream, [(key, json.dumps(v).encode(), partition_hash(key)) for v in values])
    return [seq for _, seq in out]


def _values(records: list[dict[str, Any]]) -> list[Any]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in records]


def _fail_on_poison(records: list[dict[str, Any]]) -> InvokeResult:
    if any(json.loads(base64.b64decode(r["kinesis"]["data"])).get("poison") for r in records):
        return InvokeResult(b'{"errorType": "ValueError"}', "Unhandled", request_id="req-1")
    return InvokeResult(b"null")


async def _instant(_seconds: float) -> None:
    return None


def _poller(streams: StreamService, store: MappingStore, invoke: FakeInvoke, deliver: FakeDeliver,
            **cfg: Any) -> KinesisPoller:
    clock = cfg.pop("clock", None)
    extra = {"clock": clock} if clock else {}
    return KinesisPoller(_mapping(**cfg), streams, store, invoke, deliver, sleep=_instant, **extra)


async def test_bisection_isolates_a_poison_record_and_retries_count_only_unsplittable_failures(
        streams: StreamService, store: MappingStore) -> None:
    streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
    seqs = _put(streams, [{"n": n, "poison": n == 5} for n in range(8)])
    invoke, deliver = FakeInvoke(_fail_on_poison), FakeDeliver()
    poller = _poller(streams, store, invoke, deliver, bisect=True, max_retries=2, on_failure="arn:aws:sqs:r:a:dlq")
    poller.start()
    await until(lambda: store.checkpoint("m-1", 0) == 9)
    await poller.stop()
    # Each record names the function's role, as AWS's (LocalStack's Kinesis ESM snapshots).
    assert {r["invokeIdentityArn"] for b in invoke.batches for r in b} == {"arn:aws:iam::000000000000:role/fn-role"}
    # 8 -> 4+4 -> (2+2) -> 1+1: the poison record alone, tried 1 + 2 retries, then given up.
    assert [_values(b) for b in invoke.batches] == [
        [0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [5], [5], [6, 7]]
    (target, record), = deliver.sent
    assert target == "arn:aws:sqs:r:a:dlq"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[5], seqs[5], 1)


async def test_without_bisection_the_whole_batch_retries_then_is_given_up(streams: StreamService,
                                                                           store: MappingStore) -> None:
    streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
    _put(streams, [{"n": 0}, {"n": 1, "poison": True}])
    invoke, deliver = FakeInvoke(_fail_on_poison), FakeDeliver()
    poller = _poller(streams, store, invoke, deliver, max_retries=1, on_failure="arn:aws:sns:r:a:t")
    poller.start()
    await until(lambda: store.checkpoint("m-1", 0) == 3)
    await poller.stop()
    assert len(invoke.batches) == 2 and deliver.sent[0][1]["KinesisBatchInfo"]["batchSize"] == 2


async def test_report_batch_item_failures_resumes_from_the_lowest_failed_record(streams: StreamService,
                                                                                store: MappingStore) -> None:
    streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
    seqs = _put(streams, [{"n": n} for n in range(5)])
    calls = 0

    def respond(records: list[dict[str, Any]]) -> InvokeResult:
        nonlocal calls
        calls += 1
        if calls == 1:  # records 3 and 2 failed: resume from 2
            failed = [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[2]}]
            return InvokeResult(json.dumps({"batchItemFailures": failed}).encode())
        return InvokeResult(b"{}")

    invoke, deliver = FakeInvoke(respond), FakeDeliver()
    poller = _poller(streams, store, invoke, deliver, report_failures=True)
    poller.start()
    await until(lambda: store.checkpoint("m-1", 0) == 6)
    await poller.stop()
    assert [_values(b) for b in invoke.batches] == [[0, 1, 2, 3, 4], [2, 3, 4]]


async def test_old_records_are_given_up_without_invoking(tmp_path: Any, store: MappingStore) -> None:
    now = [1_000_000.0]
    streams = StreamService(tmp_path / "s", clock=lambda: now[0])
    try:
        streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
        _put(streams, [{"n": 0}])
        now[0] += 120
        invoke, deliver = FakeInvoke(), FakeDeliver()
        poller = _poller(streams, store, invoke, deliver, max_record_age_s=60, on_failure="arn:aws:sqs:r:a:q",
                         clock=lambda: now[0])
        poller.start()
        await until(lambda: store.checkpoint("m-1", 0) == 2)
        await poller.stop()
        assert invoke.batches == []
        assert deliver.sent[0][1]["requestContext"]["condition"] == "RecordAgeExceeded"
    finally:
        streams.close()


async def test_filters_latest_position_and_lanes(streams: StreamService, store: MappingStore) -> None:
    streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
    _put(streams, [{"n": -1}])  # before LATEST: never delivered
    invoke, deliver = FakeInvoke(), FakeDeliver()
    poller = _poller(streams, store, invoke, deliver, starting_position="LATEST", parallelization=3,
                     filters=('{"data": {"n": [{"numeric": [">=", 0]}]}}',), batch_size=2)
    poller.start()
    await until(lambda: store.checkpoint("m-1", 0) == 2)
    for key in ("a", "b", "c"):
        _put(streams, [{"n": 0}, {"n": 1}, {"n": -5}, {"n": 2}], key=key)
    await until(lambda: store.checkpoint("m-1", 0) == 14)
    await poller.stop()
    by_key: dict[str, list[int]] = {}
    for batch in invoke.batches:
        assert len(batch) <= 2
        for r in batch:
            by_key.setdefault(r["kinesis"]["partitionKey"], []).append(_values([r])[0])
    assert by_key == {"a": [0, 1, 2], "b": [0, 1, 2], "c": [0, 1, 2]}
    assert poller.stats["filtered"] == 3


async def test_tumbling_windows_carry_state_and_end_with_a_final_invocation(tmp_path: Any,
                                                                            store: MappingStore) -> None:
    now = [1_000_000.0]  # the window of 60 s is [999,960, 1,000,020)
    streams = StreamService(tmp_path / "s", clock=lambda: now[0])
    events: list[dict[str, Any]] = []

    class WindowedInvoke(FakeInvoke):
        async def __call__(self, account: str, region: str, function_arn: str, payload: bytes, *,
                           trace_header: str | None = None) -> InvokeResult:
            event = json.loads(payload)
            events.append(event)
            total = event["state"].get("sum", 0) + sum(_values(event["Records"]))
            return InvokeResult(json.dumps({"state": {"sum": total}}).encode())

    invoke = WindowedInvoke()

    try:
        streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
        _put(streams, [{"n": 1}, {"n": 2}])
        poller = KinesisPoller(_mapping(tumbling_window_s=60, batch_size=1), streams, store, invoke, FakeDeliver(),
                               sleep=_instant, clock=lambda: now[0], poll_wait_s=0.01)
        poller.start()
        await until(lambda: len(events) == 2)
        now[0] += 30  # the window is over: the next record opens a new one
        _put(streams, [{"n": 4}])
        await until(lambda: store.checkpoint("m-1", 0) == 4 and len(events) == 4)
        await poller.stop()
    finally:
        streams.close()
    first, second, final, fresh = events
    assert first["window"] == {"start": "1970-01-12T13:46:00Z", "end": "1970-01-12T13:47:00Z"}
    assert (first["state"], second["state"]) == ({}, {"sum": 1})  # carried between invocations
    assert first["shardId"] == "shardId-000000000000" and first["isFinalInvokeForWindow"] is False
    assert final["Records"] == [] and final["isFinalInvokeForWindow"] is True and final["state"] == {"sum": 3}
    assert fresh["state"] == {} and fresh["window"]["start"] == "1970-01-12T13:47:00Z" and _values(
        fresh["Records"]) == [4]


async def test_records_failed_by_batch_item_failures_report_a_null_function_error(streams: StreamService,
                                                                                   store: MappingStore) -> None:
    # The function answered without error: AWS's on-failure record has "functionError": null
    # (LocalStack's test_kinesis_report_batch_item_failures).
    streams.create(ACCOUNT, REGION, "s", 1, "PROVISIONED")
    seqs = _put(streams, [{"n": 0}])

    def respond(records: list[dict[str, Any]]) -> InvokeResult:
        return InvokeResult(json.dumps({"batchItemFailures": [{"itemIdentifier": seqs[0]}]}).encode())

    invoke, deliver = FakeInvoke(respond), FakeDeliver()
    poller = _poller(streams, store, invoke, deliver, report_failures=True, max_retries=0,
                     on_failure="arn:aws:sqs:r:a:dlq")
    poller.start()
    await until(lambda: len(deliver.sent) == 1)
    await poller.stop()
    (_, record), = deliver.sent
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
