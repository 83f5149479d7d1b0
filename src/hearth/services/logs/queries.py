"""CloudWatch Logs Insights queries: StartQuery, DescribeQueries, GetQueryResults, StopQuery (a part of
`LogsProvider`).

A query runs when it is started, over the events then stored, and is `Complete` at once: Hearth's groups
are small enough that there is nothing to schedule. Of the Insights language it understands `fields`,
`sort <field> [asc|desc]`, `limit <n>` and `filter @message like /regex/` or `like "text"`; any other
command is refused as malformed rather than answered wrongly (docs/design.md). It never reads another
account's groups: the groups a query names are looked up under the caller's account and region.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.store import LogEvent, LogStore, LogStoreError

# A query's results: at most this many rows (StartQuery's `limit` defaults to it, as on AWS).
MAX_RESULTS = 10_000
_LIKE = re.compile(r"^(@?\w+)\s+like\s+(?:/(.*)/|\"(.*)\")$")


def _malformed(text: str) -> AwsError:
    return AwsError("MalformedQueryException", f"unexpected query command: {text}", 400)


def _run(query: str, events: list[LogEvent], group: str, limit: int) -> list[list[dict[str, str]]]:
    fields = ["@timestamp", "@message"]
    rows = events
    for command in (part.strip() for part in query.split("|")):
        verb, _, rest = command.partition(" ")
        rest = rest.strip()
        if verb == "fields":
            fields = [f.strip() for f in rest.split(",") if f.strip()]
        elif verb == "sort":
            name, _, order = rest.partition(" ")
            descending = order.strip().lower() != "asc"
            rows = sorted(rows, key=lambda e: e.timestamp if name == "@timestamp" else e.message,
                          reverse=descending)
        elif verb == "limit" and rest.isdigit():
            limit = min(limit, int(rest))
        elif verb == "filter" and (match := _LIKE.match(rest)) and match.group(1) == "@message":
            regex = re.compile(match.group(2)) if match.group(2) is not None else None
            text = match.group(3) or ""
            rows = [e for e in rows if (regex.search(e.message) if regex else text in e.message)]
        else:
            raise _malformed(command)
    out = []
    for event in rows[:limit]:
        values = {"@timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.timestamp / 1000))
                  + f".{event.timestamp % 1000:03d}", "@message": event.message, "@logStream": event.stream,
                  "@log": group, "@ingestionTime": str(event.ingestion_ms)}
        row = [{"field": name, "value": values[name]} for name in fields if name in values]
        row.append({"field": "@ptr", "value": event.key})
        out.append(row)
    return out


class QueryOperations:
    """Logs Insights over a `LogStore`; the queries themselves are kept as `query` resources."""

    _store: LogStore

    def start_query(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        groups = list(params.get("logGroupNames") or [])
        if params.get("logGroupName"):
            groups.append(params["logGroupName"])
        groups += [ident.rsplit(":log-group:", 1)[-1].removesuffix(":*")
                   for ident in params.get("logGroupIdentifiers") or []]
        if not groups:
            raise AwsError("InvalidParameterException", "Must specify either logGroupName, logGroupNames or "
                                                        "logGroupIdentifiers", 400)
        start, end = int(params["startTime"]), int(params["endTime"])
        query = params["queryString"]
        results: list[list[dict[str, str]]] = []
        scanned = 0
        for group in groups:
            try:
                page = self._store.filter_events(ctx.account_id, ctx.region, group, start=start * 1000,
                                                 end=end * 1000 + 999, limit=MAX_RESULTS)
            except LogStoreError:
                raise AwsError("ResourceNotFoundException",
                               f"Log group '{group}' does not exist for account ID '{ctx.account_id}'", 400) from None
            scanned += len(page.events)
            results += _run(query, page.events, group, int(params.get("limit") or MAX_RESULTS))
        query_id = str(uuid.uuid4())
        info = {
            "queryId": query_id, "queryLanguage": params.get("queryLanguage") or "CWLI",
            "queryString": f'SOURCE "{groups[0]}" START={start}000 END={end}999 | {query}' if len(groups) == 1
            else query,
            "status": "Complete", "createTime": int(time.time() * 1000), "logGroupName": groups[0],
            "results": results, "statistics": {"recordsMatched": float(len(results)),
                                               "recordsScanned": float(scanned), "bytesScanned": 0.0},
        }
        self._store.resources.put(ctx.account_id, ctx.region, "query", query_id, info)
        return {"queryId": query_id}

    def describe_queries(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, status = params.get("logGroupName"), params.get("status")
        out = []
        for info in self._store.resources.list(ctx.account_id, ctx.region, "query"):
            if (group and info["logGroupName"] != group) or (status and info["status"] != status):
                continue
            out.append({k: info[k] for k in ("queryId", "queryLanguage", "queryString", "status", "createTime",
                                             "logGroupName")})
        out.sort(key=lambda q: q["createTime"], reverse=True)
        return {"queries": out[: params.get("maxResults") or 1000]}

    def get_query_results(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        info = self._store.resources.get(ctx.account_id, ctx.region, "query", params["queryId"])
        if info is None:
            raise AwsError("ResourceNotFoundException", "Query does not exist.", 400)
        return {"queryLanguage": info["queryLanguage"], "results": info["results"],
                "statistics": info["statistics"], "status": info["status"]}

    def stop_query(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if self._store.resources.get(ctx.account_id, ctx.region, "query", params["queryId"]) is None:
            raise AwsError("ResourceNotFoundException", "Query does not exist.", 400)
        return {"success": False}  # it has completed already
