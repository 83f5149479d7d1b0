"""DynamoDB's Query and Scan, on tables and on their local and global secondary indexes.

It owns turning a key condition into an indexed range of the store (the partition's encoded hash
key, bounds on the encoded sort key; `begins_with` is the range [prefix, prefix + '~')), and AWS's
paging: a page ends when `Limit` items were *evaluated* (before the filter) or 1 MB was read, and
then carries LastEvaluatedKey (the table's key, plus the index's key on an index), even if nothing
follows, as AWS does. Parallel Scan segments are ranges of the stored hash of the partition key, so
together they cover every item exactly once. It never writes.
"""

from __future__ import annotations

from typing import Any

from hearth.aws.context import RequestContext
from hearth.services.dynamodb import checks as rq
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.evaluate import check, legacy_condition, project
from hearth.services.dynamodb.expressions import (
    And,
    Between,
    Compare,
    Condition,
    ExpressionError,
    Function,
    Literal,
    Path,
    parse_condition,
)
from hearth.services.dynamodb.store import SEGMENT_SPACE, Index, Row, Table, TableStore, segment_bounds, segment_of
from hearth.services.dynamodb.values import Item

PAGE_BYTES = 1024 * 1024
FETCH = 256
Bound = tuple[str, bool] | None


def _invalid_key_op(op: str) -> ExpressionError:
    return ExpressionError(f"Invalid operator used in KeyConditionExpression: {op}")


def _flatten(node: Condition) -> list[Condition]:
    if isinstance(node, And):
        return [*_flatten(node.left), *_flatten(node.right)]
    return [node]


def _part_name(part: Condition) -> tuple[str, list[Literal], str]:
    """(attribute, literals, operator) of one key condition part."""
    if isinstance(part, Compare):
        if part.op == "<>":
            raise _invalid_key_op("<>")
        path, lits, op = part.left, [part.right], part.op
    elif isinstance(part, Between):
        path, lits, op = part.operand, [part.low, part.high], "BETWEEN"
    elif isinstance(part, Function):
        if part.name != "begins_with":
            raise _invalid_key_op(part.name)
        path, lits, op = part.args[0], [part.args[1]], "begins_with"
    else:
        raise _invalid_key_op(type(part).__name__.upper())
    if not isinstance(path, Path) or len(path.elements) != 1 or not all(isinstance(x, Literal) for x in lits):
        raise ExpressionError("Invalid KeyConditionExpression: Syntax error; token: \"key\", near: \"key\"")
    return str(path.elements[0]), lits, op  # type: ignore[return-value]


class ReadsProvider:
    def __init__(self, store: TableStore) -> None:
        self.store = store

    def _index(self, t: Table, params: dict[str, Any]) -> Index | None:
        name = params.get("IndexName")
        if not name:
            if params.get("Select") == "ALL_PROJECTED_ATTRIBUTES":
                raise v.invalid_param("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
            return None
        index = t.index(str(name))
        if index is None:
            raise v.invalid(f"The table does not have the specified index: {name}")
        if index.kind == "GSI" and params.get("ConsistentRead"):
            raise v.invalid("Consistent reads are not supported on global secondary indexes")
        select = params.get("Select")
        if select == "ALL_ATTRIBUTES" and index.kind == "GSI" and index.projection != "ALL":
            raise v.invalid_param(f"Select type ALL_ATTRIBUTES is not supported for global secondary index "
                                  f"{index.name} because its projection type is not ALL")
        return index

    def _key_bounds(self, t: Table, index: Index | None, tree: Condition) -> tuple[str, Bound, Bound]:
        hash_name = index.hash_key if index else t.hash_key
        range_name = index.range_key if index else t.range_key
        parts = _flatten(tree)
        if len(parts) > 2:
            raise v.invalid("Conditions can be of length 1 or 2 only")
        types = t.types
        hk: str | None = None
        low: Bound = None
        high: Bound = None
        for part in parts:
            name, lits, op = _part_name(part)
            if name not in (hash_name, range_name):
                raise v.invalid(f"Query condition missed key schema element: {range_name or hash_name}"
                                if hk is not None or name != hash_name else "Query key condition not supported")
            for lit in lits:
                if v.kind_of(lit.value) != types.get(name):
                    raise v.invalid_param("Condition parameter type does not match schema type")
            if name == hash_name:
                if op != "=" or hk is not None:
                    raise v.invalid("Query key condition not supported")
                hk = v.encode_key(lits[0].value)
                continue
            encoded = [v.encode_key(x.value) for x in lits]
            if op == "=":
                low, high = (encoded[0], True), (encoded[0], True)
            elif op in ("<", "<="):
                high = (encoded[0], op == "<=")
            elif op in (">", ">="):
                low = (encoded[0], op == ">=")
            elif op == "BETWEEN":
                order = v.compare(lits[0].value, lits[1].value)
                if order is not None and order > 0:
                    raise ExpressionError(
                        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater "
                        f"than or equal to lower bound; lower bound operand: AttributeValue: "
                        f"{{{v.kind_of(lits[0].value)}:{next(iter(lits[0].value.values()))}}}, upper bound "
                        f"operand: AttributeValue: {{{v.kind_of(lits[1].value)}:"
                        f"{next(iter(lits[1].value.values()))}}}")
                low, high = (encoded[0], True), (encoded[1], True)
            else:
                if v.kind_of(lits[0].value) == "N":
                    raise ExpressionError("Invalid KeyConditionExpression: Incorrect operand type for operator or "
                                          "function; operator or function: begins_with, operand type: N")
                low, high = (encoded[0], True), (encoded[0] + "~", False)
        if hk is None:
            raise v.invalid(f"Query condition missed key schema element: {hash_name}")
        return hk, low, high

    def _start(self, t: Table, index: Index | None, raw: Any) -> tuple[int, str, str, str] | None:
        """The (seg, hk, sk, pk) position after which a page starts."""
        if raw is None:
            return None
        start = v.validate_item(raw)
        names = t.index_key_names(index) if index else t.key_names
        if set(start) != set(names):
            raise v.invalid("The provided starting key is invalid: The provided key element does not match the "
                            "schema")
        base = rq.key(t, t.key_of(start))
        hk, sk = self.store.encode(t, base)
        if index is None:
            return segment_of(hk), hk, sk, ""
        ihk = v.encode_key(start[index.hash_key])
        isk = v.encode_key(start[index.range_key]) if index.range_key else ""
        return segment_of(ihk), ihk, isk, hk + "|" + sk

    def _prepare(self, ctx: RequestContext, params: dict[str, Any], *, query: bool) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"])
        index = self._index(t, params)
        subs = rq.substitutions(params)
        key_tree: Condition | None = None
        if query:
            text = params.get("KeyConditionExpression")
            if text is not None:
                key_tree = parse_condition(str(text), subs, "KeyConditionExpression")
            else:
                key_tree = legacy_condition(params.get("KeyConditions"), None)
            if key_tree is None:
                raise v.invalid("Either the KeyConditions or KeyConditionExpression parameter must be specified in "
                                "the request.")
        filter_text = params.get("FilterExpression")
        filter_tree: Condition | None
        if filter_text is not None:
            filter_tree = parse_condition(str(filter_text), subs, "FilterExpression")
        else:
            filter_tree = legacy_condition(params.get("QueryFilter" if query else "ScanFilter"),
                                           params.get("ConditionalOperator"))
        paths = rq.projection(params, subs)
        subs.check_unused()
        select = params.get("Select")
        if select == "SPECIFIC_ATTRIBUTES" and not paths:
            raise v.invalid("1 validation error detected: Value null at 'projectionExpression' failed to satisfy "
                            "constraint: Member must not be null")
        if select == "COUNT" and paths:
            raise v.invalid("Cannot specify the AttributesToGet when choosing to get only the Count")
        return {"table": t, "index": index, "key": key_tree, "filter": filter_tree, "paths": paths,
                "select": select}

    def _page(self, params: dict[str, Any], p: dict[str, Any], fetch: Any) -> dict[str, Any]:
        t: Table = p["table"]
        index: Index | None = p["index"]
        limit = params.get("Limit")
        after = self._start(t, index, params.get("ExclusiveStartKey"))
        items: list[Item] = []
        scanned = 0
        size = 0
        last: Row | None = None
        stopped = False
        fetch_base = index is not None and index.kind == "LSI" and index.projection != "ALL" and (
            p["select"] == "ALL_ATTRIBUTES" or p["paths"])
        while not stopped:
            want = FETCH if limit is None else min(FETCH, int(limit) - scanned)
            rows: list[Row] = fetch(after, want)
            for row in rows:
                scanned += 1
                size += row.size
                last = row
                item = row.item
                if fetch_base:
                    item = self.store.get_item(t, t.key_of(item)) or item
                if p["filter"] is None or check(item, p["filter"], "FilterExpression"):
                    items.append(project(item, p["paths"]) if p["paths"] else item)
                if (limit is not None and scanned >= int(limit)) or size >= PAGE_BYTES:
                    stopped = True
                    break
            if len(rows) < want:
                break
            if last is not None and not stopped:
                after = (last.seg, last.hk, last.sk, last.pk)
        out: dict[str, Any] = {"Count": len(items), "ScannedCount": scanned}
        if p["select"] != "COUNT":
            out["Items"] = items
        if stopped and last is not None:
            names = t.index_key_names(index) if index else t.key_names
            out["LastEvaluatedKey"] = {k: last.item[k] for k in names if k in last.item}
        units = rq.read_units(size, bool(params.get("ConsistentRead")))
        # Through an index, the index spends the units (an LSI fetching unprojected attributes reads the
        # table too; Hearth counts the index's share only).
        consumed = (rq.capacity(params, t, 0.0, read=True, indexes={index.name: units}) if index is not None else
                    rq.capacity(params, t, units, read=True))
        if consumed is not None:
            out["ConsumedCapacity"] = consumed
        return out

    def query(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        p = self._prepare(ctx, params, query=True)
        t, index = p["table"], p["index"]
        hk, low, high = self._key_bounds(t, index, p["key"])
        forward = params.get("ScanIndexForward", True) is not False
        idx = index.name if index else ""

        def fetch(after: tuple[int, str, str, str] | None, want: int) -> list[Row]:
            return self.store.query(t, idx, hk, low, high, forward, (after[2], after[3]) if after else None, want)

        return self._page(params, p, fetch)

    def scan(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        segment, total = params.get("Segment"), params.get("TotalSegments")
        if segment is not None and total is None:
            raise v.invalid("The TotalSegments parameter is required but was not present in the request when "
                            "Segment parameter is present")
        if total is not None and segment is None:
            raise v.invalid("The Segment parameter is required but was not present in the request when parameter "
                            "TotalSegments is present")
        if segment is not None and total is not None and int(segment) >= int(total):
            raise v.invalid(f"The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                            f"Segment: {segment} is not less than TotalSegments: {total}")
        p = self._prepare(ctx, params, query=False)
        t, index = p["table"], p["index"]
        bounds = segment_bounds(int(segment), int(total)) if segment is not None and total is not None \
            else (0, SEGMENT_SPACE)
        idx = index.name if index else ""

        def fetch(after: tuple[int, str, str, str] | None, want: int) -> list[Row]:
            return self.store.scan(t, idx, bounds, after, want)

        return self._page(params, p, fetch)
