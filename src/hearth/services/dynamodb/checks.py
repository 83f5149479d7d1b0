"""What every DynamoDB operation checks in a request: the table, keys and items against the key
schema, the expression parameters, ReturnConsumedCapacity, with AWS's error texts.

It never writes anything and never evaluates a condition against an item.
"""

from __future__ import annotations

import math
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.evaluate import legacy_condition
from hearth.services.dynamodb.expressions import Condition, Path, Substitutions, parse_condition, parse_projection
from hearth.services.dynamodb.store import Table, TableStore
from hearth.services.dynamodb.values import Item


def not_found(detail: str | None = None) -> AwsError:
    message = "Requested resource not found" + (f": {detail}" if detail else "")
    return AwsError("ResourceNotFoundException", message)


def table_name(params: dict[str, Any]) -> str:
    name = str(params.get("TableName") or "")
    if name.startswith("arn:"):
        return name.split(":table/", 1)[-1].split("/", 1)[0]
    return name


def table(store: TableStore, ctx: RequestContext, name: str, *, detailed: bool = False) -> Table:
    if name.startswith("arn:"):
        name = name.split(":table/", 1)[-1].split("/", 1)[0]
    found = store.get_table(ctx.account_id, ctx.region, name)
    if found is None:
        raise not_found(f"Table: {name} not found" if detailed else None)
    return found


def _empty_key(name: str, kind: str) -> AwsError:
    word = "string" if kind == "S" else "binary"
    return AwsError("ValidationException", "One or more parameter values are not valid. The AttributeValue for a key "
                                           f"attribute cannot contain an empty {word} value. Key: {name}")


def key(t: Table, raw: Any) -> Item:
    """A Key parameter checked against the table's key schema."""
    if not isinstance(raw, dict):
        raise v.invalid("The provided key element does not match the schema")
    item = v.validate_item(raw)
    if set(item) != set(t.key_names):
        raise v.invalid("The provided key element does not match the schema")
    types = t.types
    for name in t.key_names:
        kind = v.kind_of(item[name])
        if kind != types.get(name):
            raise v.invalid("The provided key element does not match the schema")
        if kind in ("S", "B") and len(item[name][kind]) == 0:
            raise _empty_key(name, kind)
    return item


def item(t: Table, raw: Any) -> Item:
    """An Item parameter: valid values, the key present with its types, index keys typed, size."""
    checked = v.validate_item(raw)
    types = t.types
    for name in t.key_names:
        if name not in checked:
            raise v.invalid_param(f"Missing the key {name} in the item")
        kind = v.kind_of(checked[name])
        if kind != types.get(name):
            raise v.invalid_param(f"Type mismatch for key {name} expected: {types.get(name)} actual: {kind}")
        if kind in ("S", "B") and len(checked[name][kind]) == 0:
            raise _empty_key(name, kind)
    check_index_keys(t, checked)
    v.check_item_size(checked)
    return checked


def check_index_keys(t: Table, checked: Item) -> None:
    types = t.types
    for index in t.indexes:
        for name in (index.hash_key, index.range_key):
            if name is None or name not in checked or name in t.key_names:
                continue
            kind = v.kind_of(checked[name])
            if kind != types.get(name):
                raise v.invalid_param(f"Type mismatch for Index Key {name} Expected: {types.get(name)} Actual: "
                                      f"{kind} IndexName: {index.name}")
            if kind in ("S", "B") and len(checked[name][kind]) == 0:
                raise AwsError("ValidationException", "One or more parameter values are not valid. A value specified "
                               "for a secondary index key is not supported. The AttributeValue for a key attribute "
                               f"cannot contain an empty {'string' if kind == 'S' else 'binary'} value. IndexName: "
                               f"{index.name}, IndexKey: {name}")


EXPRESSION_PARAMS = ("ConditionExpression", "UpdateExpression", "ProjectionExpression", "FilterExpression",
                     "KeyConditionExpression")
LEGACY_PARAMS = ("Expected", "AttributeUpdates", "AttributesToGet", "QueryFilter", "ScanFilter", "KeyConditions")


def substitutions(params: dict[str, Any]) -> Substitutions:
    names = params.get("ExpressionAttributeNames")
    raw_values = params.get("ExpressionAttributeValues")
    used_expr = [p for p in EXPRESSION_PARAMS if params.get(p) is not None]
    used_legacy = [p for p in LEGACY_PARAMS if params.get(p) is not None]
    if used_expr and used_legacy:
        raise v.invalid("Can not use both expression and non-expression parameters in the same request: "
                        f"Non-expression parameters: {{{', '.join(used_legacy)}}} Expression parameters: "
                        f"{{{', '.join(used_expr)}}}")
    if names is not None:
        if not names:
            raise v.invalid("ExpressionAttributeNames must not be empty")
        if not used_expr:
            raise v.invalid("ExpressionAttributeNames can only be specified when using expressions")
    values: dict[str, Any] | None = None
    if raw_values is not None:
        if not raw_values:
            raise v.invalid("ExpressionAttributeValues must not be empty")
        if not used_expr:
            raise v.invalid("ExpressionAttributeValues can only be specified when using expressions")
        values = {}
        for k, raw in raw_values.items():
            try:
                values[k] = v.validate_value(raw)
            except AwsError as err:
                raise v.invalid(f"ExpressionAttributeValues contains invalid value: {err.message} for key {k}"
                                ) from None
    return Substitutions(dict(names) if names is not None else None, values)


def condition(params: dict[str, Any], subs: Substitutions, *, name: str = "ConditionExpression",
              legacy: str = "Expected") -> Condition | None:
    text = params.get(name)
    if text is not None:
        return parse_condition(str(text), subs, name)
    return legacy_condition(params.get(legacy), params.get("ConditionalOperator"), expected=legacy == "Expected")


def projection(params: dict[str, Any], subs: Substitutions) -> list[Path] | None:
    text = params.get("ProjectionExpression")
    if text is not None:
        return parse_projection(str(text), subs)
    names = params.get("AttributesToGet")
    if names:
        if len(set(names)) != len(names):
            raise v.invalid(f"One or more parameter values were invalid: Duplicate value in attribute name: "
                            f"{next(n for n in names if names.count(n) > 1)}")
        return [Path((str(n),)) for n in names]
    return None


def capacity(params: dict[str, Any], t: Table, units: float, *, read: bool = False,
             indexes: dict[str, float] | None = None) -> dict[str, Any] | None:
    """ConsumedCapacity as AWS reports it: the total (the table's `units` plus each index's), and with
    INDEXES the table's and each index's share (a read through an index costs the index, not the table)."""
    mode = params.get("ReturnConsumedCapacity") or "NONE"
    if mode == "NONE":
        return None
    kind = "ReadCapacityUnits" if read else "WriteCapacityUnits"
    total = units + sum((indexes or {}).values())
    out: dict[str, Any] = {"TableName": t.name, "CapacityUnits": total, kind: total}
    if mode == "INDEXES":
        out["Table"] = {"CapacityUnits": units, kind: units}
        for name, used in (indexes or {}).items():
            found = t.index(name)
            field = "GlobalSecondaryIndexes" if found is None or found.kind == "GSI" else "LocalSecondaryIndexes"
            out.setdefault(field, {})[name] = {"CapacityUnits": used, kind: used}
    return out


def index_write_units(t: Table, old: Item | None, new: Item | None) -> dict[str, float]:
    """Write units each index spends on an item write (AWS: an index entry written or deleted costs its
    projected size in 1 KB units; an entry whose index key changed is deleted and written again; an
    index the write leaves unchanged costs nothing)."""
    out: dict[str, float] = {}
    for index in t.indexes:
        before = TableStore.index_entry(t, index, old) if old is not None else None
        after = TableStore.index_entry(t, index, new) if new is not None else None
        if before is None and after is None:
            continue
        if before is not None and after is not None and before[:2] == after[:2]:
            if before[2] == after[2]:
                continue
            out[index.name] = _kb(after[2])
        else:
            out[index.name] = sum(_kb(e[2]) for e in (before, after) if e is not None)
    return out


def _kb(item: Item) -> float:
    return float(max(1, math.ceil(v.item_size(item) / 1024)))


def write_units(*items: Item | None) -> float:
    size = max((v.item_size(i) for i in items if i is not None), default=0)
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
