"""`hearth logs FUNCTION`: print a function's log events, optionally following new ones.

It owns finding the function's log group (its LoggingConfig, else `/aws/lambda/NAME`), the time
window (`--since`) and the output lines (`timestamp stream message`). It reads logs only through the
CloudWatch Logs API (FilterLogEvents), never from Hearth's files.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import click

from hearth.cli.client import api_errors, make_client
from hearth.cli.main import main

POLL_INTERVAL_S = 1.0
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(value: str, now_ms: int) -> int:
    """`10m`, `1h`, `2d` (relative to now) or an ISO 8601 time -> epoch milliseconds."""
    match = _DURATION.match(value.strip())
    if match:
        return now_ms - int(match.group(1)) * _UNIT_S[match.group(2)] * 1000
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a duration (10m, 1h, 2d) nor an ISO 8601 time",
                                 param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is the user's local time
    return int(moment.timestamp() * 1000)


def log_group_of(lambda_client: Any, function: str) -> str:
    """The group a function logs to. A name starting with `/` is taken as a group already."""
    if function.startswith("/"):
        return function
    from botocore.exceptions import ClientError

    try:
        config = lambda_client.get_function_configuration(FunctionName=function)
    except ClientError:
        # Deleted functions still have logs; any API answer other than a config means "use the default".
        return f"/aws/lambda/{function.split(':')[-1] if function.startswith('arn:') else function}"
    group = (config.get("LoggingConfig") or {}).get("LogGroup")
    return str(group) if group else f"/aws/lambda/{config['FunctionName']}"


def fetch_events(logs_client: Any, group: str, start_ms: int, pattern: str | None) -> Iterator[dict[str, Any]]:
    """Every event of the group from start_ms on, following FilterLogEvents' nextToken."""
    params: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if pattern:
        params["filterPattern"] = pattern
    while True:
        page = logs_client.filter_log_events(**params)
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token or token == params.get("nextToken"):
            return
        params["nextToken"] = token


def format_event(event: dict[str, Any]) -> str:
    moment = datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC)
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{stamp} {event.get('logStreamName', '-')} {str(event['message']).rstrip(chr(10))}"


class Follower:
    """Prints each event once while polling: events are deduplicated by eventId."""

    def __init__(self, logs_client: Any, group: str, start_ms: int, pattern: str | None,
                 echo: Callable[[str], None]) -> None:
        self._client = logs_client
        self._group = group
        self._start = start_ms
        self._pattern = pattern
        self._echo = echo
        self._seen: dict[str, int] = {}  # eventId -> timestamp

    def poll(self) -> int:
        """Print events not printed yet; returns how many were printed."""
        printed = 0
        for event in fetch_events(self._client, self._group, self._start, self._pattern):
            event_id = str(event.get("eventId") or f"{event['timestamp']}:{event['message']}")
            if event_id in self._seen:
                continue
            self._seen[event_id] = int(event["timestamp"])
            self._echo(format_event(event))
            printed += 1
        if self._seen:
            # Later polls start at the newest timestamp seen: events of that same millisecond may
            # still arrive, so that millisecond is read again and deduplicated; older ids are dropped.
            newest = max(self._seen.values())
            self._start = max(self._start, newest)
            self._seen = {k: ts for k, ts in self._seen.items() if ts >= self._start}
        return printed


@main.command()
@click.argument("function")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--since", default="10m", show_default=True, help="Start: a duration (10m, 1h, 2d) or ISO time.")
@click.option("--filter", "pattern", default=None, help="CloudWatch filter pattern (terms, \"phrase\").")
@click.option("--endpoint-url", default=None, help="Hearth's URL (default: $AWS_ENDPOINT_URL or settings).")
def logs(function: str, follow: bool, since: str, pattern: str | None, endpoint_url: str | None) -> None:
    """Print the log events of FUNCTION (or of a log group given as /group/name)."""
    start_ms = parse_since(since, int(time.time() * 1000))
    with api_errors():
        group = log_group_of(make_client("lambda", endpoint_url), function)
        logs_client = make_client("logs", endpoint_url)
        follower = Follower(logs_client, group, start_ms, pattern, click.echo)
        if not follow:
            follower.poll()
            return
    follow_until_interrupted(follower)


def follow_until_interrupted(follower: Follower, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll about once a second; a group that does not exist yet is waited for, Ctrl-C ends quietly."""
    from botocore.exceptions import ClientError

    try:
        with api_errors():
            while True:
                try:
                    follower.poll()
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                        raise
                sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        return
