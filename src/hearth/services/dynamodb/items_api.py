"""DynamoDB's item writes and point reads: Put/Get/Update/DeleteItem, BatchGet/BatchWriteItem,
TransactGet/TransactWriteItems.

It owns the order AWS checks a write in (parameters, expressions and unused placeholders before
anything is read; the condition against the stored item inside the write's transaction, so a
concurrent write cannot slip between check and write), ReturnValues, ConditionalCheckFailed with
ReturnValuesOnConditionCheckFailure, and transactions: every condition of a TransactWriteItems is
evaluated first and the writes then happen in one database transaction, or none do
(TransactionCanceledException lists a reason per item, in order). A ClientRequestToken seen in the
last 10 minutes answers the first call's success without writing again (a different request with the
same token is an IdempotentParameterMismatchException).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb import checks as rq
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.evaluate import apply_update, check, legacy_updates, project
from hearth.services.dynamodb.expressions import UpdateAction, parse_update
from hearth.services.dynamodb.store import Table, TableStore, Writer
from hearth.services.dynamodb.values import Item

TOKEN_WINDOW_S = 600


def condition_failed(old: Item | None, params: dict[str, Any]) -> AwsError:
    fields: dict[str, Any] = {}
    if params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and old:
        fields["Item"] = old
    return AwsError("ConditionalCheckFailedException", "The conditional request failed", fields=fields)


def _return_values(params: dict[str, Any], allowed: tuple[str, ...]) -> str:
    rv = str(params.get("ReturnValues") or "NONE")
    if rv not in allowed:
        if allowed == ("NONE", "ALL_OLD"):
            raise v.invalid("ReturnValues can only be ALL_OLD or NONE")
        raise v.invalid(f"ReturnValues can only be {', '.join(allowed)}")
    return rv


class _Prepared:
    """One write checked and parsed, ready to run inside a transaction."""

    def __init__(self, table: Table, kind: str, key: Item, params: dict[str, Any], item: Item | None = None,
                 actions: list[UpdateAction] | None = None) -> None:
        self.table = table
        self.kind = kind  # Put | Update | Delete | ConditionCheck
        self.key = key
        self.params = params
        self.item = item
        self.actions = actions
        subs = rq.substitutions(params)
        self.condition = rq.condition(params, subs)
        if kind == "Update":
            text = params.get("UpdateExpression")
            if text is not None:
                self.actions = parse_update(str(text), subs)
            elif params.get("AttributeUpdates"):
                self.actions = legacy_updates(params["AttributeUpdates"])
            else:
                self.actions = []
        if kind == "ConditionCheck" and self.condition is None:
            raise v.invalid("The expression can not be empty;")
        subs.check_unused()

    def passes(self, old: Item | None) -> bool:
        return self.condition is None or check(old or {}, self.condition)

    def new_item(self, old: Item | None) -> Item | None:
        if self.kind == "Put":
            return self.item
        if self.kind == "Delete":
            return None
        if self.kind == "ConditionCheck":
            return old
        new = apply_update(old if old is not None else dict(self.key), self.actions or [], self.table.key_names)
        rq.check_index_keys(self.table, new)
        v.check_item_size(new)
        return new


def prepare(store: TableStore, ctx: RequestContext, kind: str, params: dict[str, Any]) -> _Prepared:
    t = rq.table(store, ctx, params["TableName"])
    if kind == "Put":
        item = rq.item(t, params["Item"])
        return _Prepared(t, kind, t.key_of(item), params, item=item)
    return _Prepared(t, kind, rq.key(t, params["Key"]), params)


class ItemsProvider:
    def __init__(self, store: TableStore) -> None:
        self.store = store

    def _run(self, op: _Prepared) -> tuple[Item | None, Item | None]:
        with self.store.tx() as w:
            old = w.get(op.table, op.key)
            if not op.passes(old):
                raise condition_failed(old, op.params)
            new = op.new_item(old)
            w.put(op.table, old, new)
        return old, new

    def put_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        op = prepare(self.store, ctx, "Put", params)
        rv = _return_values(params, ("NONE", "ALL_OLD"))
        old, new = self._run(op)
        out: dict[str, Any] = {}
        if rv == "ALL_OLD" and old:
            out["Attributes"] = old
        self._capacity(out, params, op.table, lambda: rq.write_units(old, new), written=(old, new))
        return out

    def delete_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        op = prepare(self.store, ctx, "Delete", params)
        rv = _return_values(params, ("NONE", "ALL_OLD"))
        old, _ = self._run(op)
        out: dict[str, Any] = {}
        if rv == "ALL_OLD" and old:
            out["Attributes"] = old
        self._capacity(out, params, op.table, lambda: rq.write_units(old), written=(old, None))
        return out

    def update_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        op = prepare(self.store, ctx, "Update", params)
        rv = _return_values(params, ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
        old, new = self._run(op)
        out: dict[str, Any] = {}
        paths = [a.path for a in op.actions or [] if a.kind != "REMOVE" or rv == "UPDATED_OLD"]
        if rv == "ALL_NEW":
            attrs = new
        elif rv == "ALL_OLD":
            attrs = old
        elif rv == "UPDATED_OLD":
            attrs = project(old, paths) if old else None
        elif rv == "UPDATED_NEW":
            attrs = project(new, paths) if new else None
        else:
            attrs = None
        if attrs:
            out["Attributes"] = attrs
        self._capacity(out, params, op.table, lambda: rq.write_units(old, new), written=(old, new))
        return out

    @staticmethod
    def _capacity(out: dict[str, Any], params: dict[str, Any], t: Table, units: Callable[[], float],
                  read: bool = False, written: tuple[Item | None, Item | None] | None = None) -> None:
        """ConsumedCapacity when asked for (`units` is only computed then: sizing an item costs); for a
        write, its (old, new) item says what each index spent."""
        if (params.get("ReturnConsumedCapacity") or "NONE") == "NONE":
            return
        indexes = rq.index_write_units(t, *written) if written is not None else None
        consumed = rq.capacity(params, t, units(), read=read, indexes=indexes)
        if consumed is not None:
            out["ConsumedCapacity"] = consumed

    def get_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"])
        key = rq.key(t, params["Key"])
        subs = rq.substitutions(params)
        paths = rq.projection(params, subs)
        subs.check_unused()
        item = self.store.get_item(t, key)
        out: dict[str, Any] = {}
        if item is not None:
            out["Item"] = project(item, paths) if paths else item
        self._capacity(out, params, t, lambda: rq.read_units(v.item_size(item) if item else 0,
                                                             bool(params.get("ConsistentRead"))), read=True)
        return out

    # -- batches ------------------------------------------------------------------------------------

    def batch_get_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        requests = params["RequestItems"]
        if sum(len(r["Keys"]) for r in requests.values()) > 100:
            raise v.invalid("Too many items requested for the BatchGetItem call")
        responses: dict[str, list[Item]] = {}
        consumed = []
        for name, spec in requests.items():
            t = rq.table(self.store, ctx, name)
            subs = rq.substitutions(spec)
            paths = rq.projection(spec, subs)
            subs.check_unused()
            keys = [rq.key(t, k) for k in spec["Keys"]]
            encoded = [self.store.encode(t, k) for k in keys]
            if len(set(encoded)) != len(encoded):
                raise v.invalid("Provided list of item keys contains duplicates")
            found = []
            size = 0
            for k in keys:
                item = self.store.get_item(t, k)
                if item is not None:
                    size += v.item_size(item)
                    found.append(project(item, paths) if paths else item)
            responses[t.name] = found
            cap = rq.capacity(params, t, rq.read_units(size, bool(spec.get("ConsistentRead"))), read=True)
            if cap:
                consumed.append(cap)
        out: dict[str, Any] = {"Responses": responses, "UnprocessedKeys": {}}
        if consumed:
            out["ConsumedCapacity"] = consumed
        return out

    def batch_write_item(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        requests = params["RequestItems"]
        if sum(len(r) for r in requests.values()) > 25:
            raise v.invalid("Too many items requested for the BatchWriteItem call")
        ops: list[tuple[Table, Item, Item | None]] = []
        seen: set[tuple[str, str, str]] = set()
        for name, entries in requests.items():
            t = rq.table(self.store, ctx, name)
            for entry in entries:
                if entry.get("PutRequest"):
                    raw = entry["PutRequest"].get("Item") or {}
                    if any(k not in raw for k in t.key_names):  # AWS's text here, unlike PutItem's
                        raise v.invalid("The provided key element does not match the schema")
                    item = rq.item(t, raw)
                    key, new = t.key_of(item), item
                elif entry.get("DeleteRequest"):
                    key, new = rq.key(t, entry["DeleteRequest"]["Key"]), None
                else:
                    raise v.invalid("Supplied AttributeValue is empty, must contain exactly one of the supported "
                                    "datatypes")
                hk, sk = self.store.encode(t, key)
                if (t.name, hk, sk) in seen:
                    raise v.invalid("Provided list of item keys contains duplicates")
                seen.add((t.name, hk, sk))
                ops.append((t, key, new))
        units: dict[str, float] = {}
        with self.store.tx() as w:
            for t, key, new in ops:
                old = w.get(t, key)
                w.put(t, old, new)
                if (params.get("ReturnConsumedCapacity") or "NONE") != "NONE":
                    units[t.name] = (units.get(t.name, 0.0) + rq.write_units(old, new)
                                     + sum(rq.index_write_units(t, old, new).values()))  # indexes count too
        out: dict[str, Any] = {"UnprocessedItems": {}}
        if (params.get("ReturnConsumedCapacity") or "NONE") != "NONE":
            out["ConsumedCapacity"] = [{"TableName": n, "CapacityUnits": u} for n, u in units.items()]
        return out

    # -- transactions -------------------------------------------------------------------------------

    def transact_get_items(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        reads = []
        for entry in params["TransactItems"]:
            spec = entry["Get"]
            t = rq.table(self.store, ctx, spec["TableName"])
            key = rq.key(t, spec["Key"])
            subs = rq.substitutions(spec)
            paths = rq.projection(spec, subs)
            subs.check_unused()
            reads.append((t, key, paths))
        responses = []
        for t, key, paths in reads:
            item = self.store.get_item(t, key)
            responses.append({"Item": project(item, paths) if paths else item} if item is not None else {})
        return {"Responses": responses}

    def transact_write_items(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ops: list[_Prepared] = []
        seen: set[tuple[str, str, str]] = set()
        for entry in params["TransactItems"]:
            kinds = [k for k in ("ConditionCheck", "Put", "Delete", "Update") if entry.get(k)]
            if len(kinds) != 1:
                raise v.invalid("TransactItems can only contain one of Check, Put, Update or Delete")
            op = prepare(self.store, ctx, kinds[0], entry[kinds[0]])
            hk, sk = self.store.encode(op.table, op.key)
            if (op.table.name, hk, sk) in seen:
                raise v.invalid("Transaction request cannot include multiple operations on one item")
            seen.add((op.table.name, hk, sk))
            ops.append(op)
        token = params.get("ClientRequestToken")
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=_plain).encode()).hexdigest()
        if token:
            known = self.store.token(ctx.account_id, ctx.region, str(token),
                                     self.store.clock() - TOKEN_WINDOW_S)
            if known is not None:
                if known != digest:
                    raise AwsError("IdempotentParameterMismatchException",
                                   "The request uses the same client token as a previous, but non-identical "
                                   "request.", message_key="Message")
                return {}
        with self.store.tx() as w:
            olds = [w.get(op.table, op.key) for op in ops]
            reasons: list[dict[str, Any]] = []
            news: list[Item | None] = []
            failed = False
            for op, old in zip(ops, olds, strict=True):
                if not op.passes(old):
                    failed = True
                    reason: dict[str, Any] = {"Code": "ConditionalCheckFailed",
                                              "Message": "The conditional request failed"}
                    if op.params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and old:
                        reason["Item"] = old
                    reasons.append(reason)
                    news.append(None)
                    continue
                try:
                    news.append(op.new_item(old))
                    reasons.append({"Code": "None"})
                except AwsError as err:
                    if err.code != "ValidationException":
                        raise
                    failed = True
                    news.append(None)
                    reasons.append({"Code": "ValidationError", "Message": err.message})
            if failed:
                codes = ", ".join(r["Code"] for r in reasons)
                raise AwsError("TransactionCanceledException",
                               f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                               f"[{codes}]", fields={"CancellationReasons": reasons}, message_key="Message")
            self._apply(w, ops, olds, news)
            if token:
                w.save_token(ctx.account_id, ctx.region, str(token), digest)
        return {}

    @staticmethod
    def _apply(w: Writer, ops: list[_Prepared], olds: list[Item | None], news: list[Item | None]) -> None:
        for op, old, new in zip(ops, olds, news, strict=True):
            if op.kind != "ConditionCheck":
                w.put(op.table, old, new)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
