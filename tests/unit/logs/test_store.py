from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import pgcluster

from hearth.services.logs.store import FILTER_SCAN_ROWS, MIGRATIONS, FilterPattern, LogStore, LogStoreError

A, B, R = "111111111111", "222222222222", "us-east-1"
G, S = "/aws/lambda/fn", "2024/01/01/[$LATEST]abc"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path)
    yield s
    s.close()


def _fill(store: LogStore, n: int, *, base: int = 1_000_000, account: str = A, stream: str = S) -> None:
    store.ensure_group(account, R, G)
    store.ensure_stream(account, R, G, stream)
    store.append(account, R, G, stream, [(base + i, f"line {i}\n") for i in range(n)])


def _msgs(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.message for e in events]


def test_messages_are_stored_as_given_including_trailing_newline(store: LogStore) -> None:
    _fill(store, 2)
    page = store.get_events(A, R, G, S, start_from_head=True)
    assert _msgs(page.events) == ["line 0\n", "line 1\n"]


def test_get_events_pages_forward_and_backward_with_cloudwatch_tokens(store: LogStore) -> None:
    _fill(store, 10)
    first = store.get_events(A, R, G, S, start_from_head=True, limit=4)
    assert _msgs(first.events) == [f"line {i}\n" for i in range(4)]
    assert first.next_forward.startswith("f/") and first.next_backward.startswith("b/")
    second = store.get_events(A, R, G, S, token=first.next_forward, limit=4)
    assert _msgs(second.events) == [f"line {i}\n" for i in range(4, 8)]
    back = store.get_events(A, R, G, S, token=second.next_backward, limit=2)
    assert _msgs(back.events) == ["line 2\n", "line 3\n"]
    third = store.get_events(A, R, G, S, token=second.next_forward, limit=4)
    assert _msgs(third.events) == ["line 8\n", "line 9\n"]
    end = store.get_events(A, R, G, S, token=third.next_forward, limit=4)
    assert end.events == []
    # At the end CloudWatch hands back the same token: that is how callers know to stop.
    assert end.next_forward == third.next_forward


def test_get_events_without_token_returns_the_newest_page(store: LogStore) -> None:
    _fill(store, 10)
    page = store.get_events(A, R, G, S, limit=3)
    assert _msgs(page.events) == ["line 7\n", "line 8\n", "line 9\n"]


def test_get_events_time_window_is_start_inclusive_end_exclusive(store: LogStore) -> None:
    _fill(store, 10)
    page = store.get_events(A, R, G, S, start=1_000_002, end=1_000_005, start_from_head=True)
    assert _msgs(page.events) == ["line 2\n", "line 3\n", "line 4\n"]


def test_invalid_token_is_refused(store: LogStore) -> None:
    _fill(store, 1)
    with pytest.raises(LogStoreError) as err:
        store.get_events(A, R, G, S, token="f/garbage")
    assert err.value.kind == "invalid_token"


def test_filter_pattern_terms_phrases_alternatives_exclusions() -> None:
    assert FilterPattern("ERROR timeout").matches("ERROR: timeout after 3s")
    assert not FilterPattern("ERROR timeout").matches("ERROR: crashed")
    assert FilterPattern('"request failed"').matches("the request failed twice")
    assert not FilterPattern('"request failed"').matches("failed request")
    assert FilterPattern("?WARN ?ERROR").matches("WARN disk")
    assert not FilterPattern("?WARN ?ERROR").matches("INFO ok")
    assert not FilterPattern("ERROR -retry").matches("ERROR will retry")
    assert not FilterPattern("error").matches("ERROR")  # case-sensitive, as CloudWatch
    assert FilterPattern("").matches("anything")
    with pytest.raises(LogStoreError):
        FilterPattern("{ $.level = 1 }")


def test_filter_events_across_streams_with_pattern_and_pagination(store: LogStore) -> None:
    store.ensure_group(A, R, G)
    for stream in ("s1", "s2"):
        store.ensure_stream(A, R, G, stream)
    store.append(A, R, G, "s1", [(10, "ERROR one\n"), (30, "ok\n"), (50, "ERROR three\n")])
    store.append(A, R, G, "s2", [(20, "ERROR two\n"), (40, "ERROR four\n")])
    page = store.filter_events(A, R, G, pattern="ERROR", limit=2)
    assert [(e.stream, e.message) for e in page.events] == [("s1", "ERROR one\n"), ("s2", "ERROR two\n")]
    assert page.next_token
    rest = store.filter_events(A, R, G, pattern="ERROR", limit=2, token=page.next_token)
    assert _msgs(rest.events) == ["ERROR four\n", "ERROR three\n"]
    assert rest.next_token is None
    only_s2 = store.filter_events(A, R, G, streams=["s2", "missing"])
    assert _msgs(only_s2.events) == ["ERROR two\n", "ERROR four\n"]
    window = store.filter_events(A, R, G, start=20, end=40)
    assert [e.timestamp for e in window.events] == [20, 30, 40]
    ids = [e.key for e in store.filter_events(A, R, G).events]
    assert len(set(ids)) == 5


def test_filter_scan_is_bounded_and_continues_with_a_token(store: LogStore) -> None:
    _fill(store, FILTER_SCAN_ROWS + 5)
    page = store.filter_events(A, R, G, pattern="nothing-matches")
    assert page.events == [] and page.next_token is not None
    rest = store.filter_events(A, R, G, pattern="line", token=page.next_token)
    assert len(rest.events) == 5 and rest.next_token is None


def test_accounts_are_isolated(store: LogStore) -> None:
    _fill(store, 3, account=A)
    with pytest.raises(LogStoreError) as err:
        store.get_events(B, R, G, S)
    assert err.value.kind == "group_not_found"
    assert store.describe_groups(B, R)[0] == []
    _fill(store, 1, account=B)
    assert len(store.filter_events(B, R, G).events) == 1
    assert len(store.filter_events(A, R, G).events) == 3
    with pytest.raises(LogStoreError):
        store.get_events(A, "eu-west-1", G, S)


def test_events_survive_a_restart(tmp_path: Path) -> None:
    first = LogStore(tmp_path)
    _fill(first, 3)
    first.close()
    again = LogStore(tmp_path)
    try:
        assert _msgs(again.get_events(A, R, G, S, start_from_head=True).events) == [
            "line 0\n", "line 1\n", "line 2\n"]
        assert again.describe_groups(A, R)[0][0].stored_bytes == 3 * len(b"line 0\n")
    finally:
        again.close()


def test_describe_groups_prefix_and_pagination(store: LogStore) -> None:
    for name in ("/aws/lambda/c", "/aws/lambda/a", "/other/x", "/aws/lambda/b"):
        store.create_group(A, R, name)
    with pytest.raises(LogStoreError) as err:
        store.create_group(A, R, "/aws/lambda/a")
    assert err.value.kind == "group_exists"
    groups, token = store.describe_groups(A, R, prefix="/aws/lambda/", limit=2)
    assert [g.name for g in groups] == ["/aws/lambda/a", "/aws/lambda/b"] and token
    groups, token = store.describe_groups(A, R, prefix="/aws/lambda/", limit=2, token=token)
    assert [g.name for g in groups] == ["/aws/lambda/c"] and token is None
    assert groups[0].arn == f"arn:aws:logs:{R}:{A}:log-group:/aws/lambda/c:*"


def test_describe_streams_by_name_and_by_last_event_time(store: LogStore) -> None:
    store.ensure_group(A, R, G)
    for name, ts in (("b", 300), ("a", 100), ("c", 200)):
        store.ensure_stream(A, R, G, name)
        store.append(A, R, G, name, [(ts, "x\n")])
    names, token = store.describe_streams(A, R, G, limit=2)
    assert [s.name for s in names] == ["a", "b"] and token
    names, token = store.describe_streams(A, R, G, limit=2, token=token)
    assert [s.name for s in names] == ["c"] and token is None
    recent, token = store.describe_streams(A, R, G, order_by="LastEventTime", descending=True, limit=2)
    assert [s.name for s in recent] == ["b", "c"]
    recent, _ = store.describe_streams(A, R, G, order_by="LastEventTime", descending=True, token=token)
    assert [s.name for s in recent] == ["a"]
    assert recent[0].first_event_ms == 100 and recent[0].last_event_ms == 100
    with pytest.raises(LogStoreError):
        store.describe_streams(A, R, G, order_by="LastEventTime", prefix="a")


def test_retention_hides_and_deletes_expired_events(store: LogStore) -> None:
    now = int(time.time() * 1000)
    store.ensure_group(A, R, G)
    store.ensure_stream(A, R, G, S)
    store.append(A, R, G, S, [(now - 3 * 86_400_000, "old\n"), (now, "new\n")])
    store.put_retention(A, R, G, 1)
    assert _msgs(store.filter_events(A, R, G).events) == ["new\n"]
    assert store.get_group(A, R, G).stored_bytes == len(b"new\n")
    store.put_retention(A, R, G, None)
    assert store.get_group(A, R, G).retention_days is None


def test_delete_group_and_stream_forget_them_and_lambda_can_recreate(store: LogStore) -> None:
    _fill(store, 2)
    store.delete_stream(A, R, G, S)
    with pytest.raises(LogStoreError) as err:
        store.get_events(A, R, G, S)
    assert err.value.kind == "stream_not_found"
    store.delete_group(A, R, G)
    with pytest.raises(LogStoreError):
        store.get_group(A, R, G)
    _fill(store, 1)  # the invoker's ensure_* recreate what a user deleted
    assert len(store.filter_events(A, R, G).events) == 1


def test_tags(store: LogStore) -> None:
    store.create_group(A, R, G, {"team": "a"})
    store.tag_group(A, R, G, {"env": "dev"})
    store.untag_group(A, R, G, ["team"])
    assert store.get_group(A, R, G).tags == {"env": "dev"}


def test_group_name_pattern_is_a_case_insensitive_substring_with_no_wildcards(store: LogStore) -> None:
    for name in ("/aws/lambda/My_Func", "/aws/lambda/myxfunc", "/aws/lambda/100%"):
        store.create_group(A, R, name)
    assert [g.name for g in store.describe_groups(A, R, pattern="MY_F")[0]] == ["/aws/lambda/My_Func"]
    assert [g.name for g in store.describe_groups(A, R, pattern="0%")[0]] == ["/aws/lambda/100%"]


@pytest.mark.skipif(pgcluster.enabled(), reason="an old SQLite layout")
def test_a_logs_database_from_before_component_schema_is_carried_forward(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "logs.db")
    old.executescript(MIGRATIONS[0])  # what older Hearths ran at every start, with no version row
    old.execute("INSERT INTO log_groups (account, region, name, created_ms) VALUES (?, ?, ?, 0)", (A, R, G))
    old.commit()
    old.close()
    store = LogStore(tmp_path)
    try:
        assert store._db.schema_version() == len(MIGRATIONS)
        assert [g.name for g in store.describe_groups(A, R)[0]] == [G]
    finally:
        store.close()
