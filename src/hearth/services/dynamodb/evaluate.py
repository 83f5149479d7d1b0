"""Evaluating parsed expressions against items: conditions, update actions, projections, and the
legacy parameters (Expected, QueryFilter/ScanFilter, KeyConditions, AttributeUpdates) turned into
the same syntax tree.

It owns the semantics AWS documents: a comparison of values of different types is false (`<>` is
true), `<`/`>` order only S (UTF-8 bytes), N and B; a path through a missing attribute yields
nothing; update right-hand sides read the item as it was before the update; REMOVE of list
elements removes by original index; ADD/DELETE on sets; arithmetic with 38-digit precision. It never
parses text and never stores anything; items are never mutated in place (copies are returned).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.expressions import (
    And,
    Between,
    Compare,
    Condition,
    ExpressionError,
    Function,
    IfNotExists,
    In,
    ListAppend,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    Size,
    UpdateAction,
)
from hearth.services.dynamodb.values import Item, Value

TYPE_NAMES = "{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }"


def resolve(item: Item, path: Path) -> Value | None:
    first = path.elements[0]
    if not isinstance(first, str):
        return None
    current: Value | None = item.get(first)
    for element in path.elements[1:]:
        if current is None:
            return None
        if isinstance(element, int):
            items = current.get("L")
            if items is None or element >= len(items):
                return None
            current = items[element]
        else:
            members = current.get("M")
            if members is None:
                return None
            current = members.get(element)
    return current


def _size(value: Value | None) -> Value | None:
    if value is None:
        return None
    kind, raw = next(iter(value.items()))
    if kind == "S":
        return {"N": str(len(raw))}
    if kind == "B":
        return {"N": str(len(raw))}
    if kind in ("SS", "NS", "BS", "L", "M"):
        return {"N": str(len(raw))}
    return None


def operand(item: Item, node: Operand, *, update: bool = False) -> Value | None:
    if isinstance(node, Path):
        found = resolve(item, node)
        if found is None and update:
            raise ExpressionError("The provided expression refers to an attribute that does not exist in the item")
        return found
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Size):
        return _size(resolve(item, node.path))
    if isinstance(node, IfNotExists):
        found = resolve(item, node.path)
        return found if found is not None else operand(item, node.default, update=update)
    if isinstance(node, ListAppend):
        first, second = operand(item, node.first, update=update), operand(item, node.second, update=update)
        if first is None or second is None or "L" not in first or "L" not in second:
            raise _bad_type()
        return {"L": [*first["L"], *second["L"]]}
    left, right = operand(item, node.left, update=update), operand(item, node.right, update=update)
    if left is None or right is None or "N" not in left or "N" not in right:
        raise _bad_type()
    return {"N": v.format_number(v.arithmetic(Decimal(left["N"]), Decimal(right["N"]), node.op == "-"))}


def _bad_type() -> ExpressionError:
    return ExpressionError("An operand in the update expression has an incorrect data type")


def check(item: Item, node: Condition, kind: str = "ConditionExpression") -> bool:
    """Whether `item` ({} when absent) satisfies the condition."""
    if isinstance(node, And):
        return check(item, node.left, kind) and check(item, node.right, kind)
    if isinstance(node, Or):
        return check(item, node.left, kind) or check(item, node.right, kind)
    if isinstance(node, Not):
        return not check(item, node.operand, kind)
    if isinstance(node, Compare):
        left, right = operand(item, node.left), operand(item, node.right)
        if node.op == "=":
            return v.equal(left, right)
        if node.op == "<>":
            return not v.equal(left, right)
        if left is None or right is None:
            return False
        order = v.compare(left, right)
        if order is None:
            return False
        return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[node.op]
    if isinstance(node, Between):
        value, low, high = operand(item, node.operand), operand(item, node.low), operand(item, node.high)
        if low is not None and high is not None:
            bounds = v.compare(low, high)
            if bounds is not None and bounds > 0:
                raise ExpressionError(f"Invalid {kind}: The BETWEEN operator requires upper bound to be greater than "
                                      f"or equal to lower bound; lower bound operand: AttributeValue: "
                                      f"{_show(low)}, upper bound operand: AttributeValue: {_show(high)}")
        if value is None or low is None or high is None:
            return False
        above, below = v.compare(value, low), v.compare(value, high)
        return above is not None and below is not None and above >= 0 and below <= 0
    if isinstance(node, In):
        value = operand(item, node.operand)
        return any(v.equal(value, operand(item, o)) for o in node.options)
    return _function(item, node, kind)


def _show(value: Value) -> str:
    kind, raw = next(iter(value.items()))
    return f"{{{kind}:{raw}}}"


def _function(item: Item, node: Function, kind: str) -> bool:
    name = node.name
    if name == "attribute_exists":
        return operand(item, node.args[0]) is not None
    if name == "attribute_not_exists":
        return operand(item, node.args[0]) is None
    target = operand(item, node.args[0])
    arg = operand(item, node.args[1])
    if name == "attribute_type":
        if arg is None or "S" not in arg or arg["S"] not in v.TYPES:
            shown = arg["S"] if arg is not None and "S" in arg else _show(arg) if arg else ""
            raise ExpressionError(f"Invalid {kind}: Invalid attribute type name found; type: {shown}, valid types: "
                                  f"{TYPE_NAMES}")
        return target is not None and v.kind_of(target) == arg["S"]
    if target is None or arg is None:
        return False
    if name == "begins_with":
        if "S" in target and "S" in arg:
            return bool(target["S"].startswith(arg["S"]))
        if "B" in target and "B" in arg:
            return bool(target["B"].startswith(arg["B"]))
        return False
    # contains
    tk = v.kind_of(target)
    if tk == "S" and "S" in arg:
        return arg["S"] in target["S"]
    if tk == "B" and "B" in arg:
        return arg["B"] in target["B"]
    if tk in v.SET_TYPES and v.SET_TYPES[tk] in arg:
        element = {v.SET_TYPES[tk]: arg[v.SET_TYPES[tk]]}
        return any(v.equal({v.SET_TYPES[tk]: x}, element) for x in target[tk])
    if tk == "L":
        return any(v.equal(x, arg) for x in target["L"])
    return False


# -- updates --------------------------------------------------------------------------------------

def _invalid_path() -> ExpressionError:
    return ExpressionError("The document path provided in the update expression is invalid for update")


def _parent(item: Item, path: Path) -> tuple[Any, str | int]:
    """The container holding the path's last element (a dict of attributes or members, or a list)."""
    container: Any = item
    for element in path.elements[:-1]:
        if isinstance(container, dict):
            if not isinstance(element, str) or element not in container:
                raise _invalid_path()
            found = container[element]
        else:
            if not isinstance(element, int) or element >= len(container):
                raise _invalid_path()
            found = container[element]
        if "M" in found:
            container = found["M"]
        elif "L" in found:
            container = found["L"]
        else:
            raise _invalid_path()
    return container, path.elements[-1]


def _set(item: Item, path: Path, value: Value) -> None:
    container, last = _parent(item, path)
    if isinstance(container, dict):
        if not isinstance(last, str):
            raise _invalid_path()
        container[last] = value
    else:
        if not isinstance(last, int):
            raise _invalid_path()
        if last >= len(container):
            container.append(value)
        else:
            container[last] = value


def _remove(item: Item, path: Path) -> None:
    try:
        container, last = _parent(item, path)
    except ExpressionError:
        return
    if isinstance(container, dict):
        container.pop(last, None)
    elif isinstance(last, int) and last < len(container):
        del container[last]


def apply_update(item: Item, actions: list[UpdateAction], key_names: tuple[str, ...]) -> Item:
    """The item after the actions (a new dict); right-hand sides read the item before the update."""
    old = item
    new = copy.deepcopy(item)
    for action in actions:
        if action.path.elements[0] in key_names:
            raise v.invalid_param(f"Cannot update attribute {action.path.elements[0]}. This attribute is part of "
                                  "the key")
    computed = [(a, operand(old, a.value, update=True) if a.kind == "SET" and a.value is not None else None)
                for a in actions]
    removals = [a for a in actions if a.kind == "REMOVE"]
    for action, value in computed:
        if action.kind == "SET":
            assert value is not None
            _set(new, action.path, value)
        elif action.kind == "ADD":
            _add(new, action)
        elif action.kind == "DELETE":
            _delete(new, action)
    # List elements go by their original index: the highest first, so earlier ones do not shift.
    for action in sorted(removals, key=lambda a: [e if isinstance(e, int) else -1 for e in a.path.elements],
                         reverse=True):
        _remove(new, action.path)
    return new


def _add(item: Item, action: UpdateAction) -> None:
    assert isinstance(action.value, Literal)
    value = action.value.value
    kind = v.kind_of(value)
    if kind not in ("N", "SS", "NS", "BS"):
        raise ExpressionError("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: "
                              f"ADD, operand type: {_type_word(kind)}, typeSet: ALLOWED_FOR_ADD_OPERAND")
    current = resolve(item, action.path)
    if current is None:
        _set(item, action.path, value)
        return
    if v.kind_of(current) != kind:
        raise _bad_type()
    if kind == "N":
        _set(item, action.path, {"N": v.format_number(v.arithmetic(Decimal(current["N"]), Decimal(value["N"]),
                                                                     False))})
        return
    merged = list(current[kind])
    for x in value[kind]:
        if not any(v.equal({kind[0]: x}, {kind[0]: y}) for y in merged):
            merged.append(x)
    _set(item, action.path, {kind: merged})


def _delete(item: Item, action: UpdateAction) -> None:
    assert isinstance(action.value, Literal)
    value = action.value.value
    kind = v.kind_of(value)
    if kind not in ("SS", "NS", "BS"):
        raise ExpressionError("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: "
                              f"DELETE, operand type: {_type_word(kind)}, typeSet: ALLOWED_FOR_DELETE_OPERAND")
    current = resolve(item, action.path)
    if current is None:
        return
    if v.kind_of(current) != kind:
        raise _bad_type()
    left = [x for x in current[kind] if not any(v.equal({kind[0]: x}, {kind[0]: y}) for y in value[kind])]
    if left:
        _set(item, action.path, {kind: left})
    else:
        _remove(item, action.path)


def _type_word(kind: str) -> str:
    return {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL", "M": "MAP",
            "L": "LIST", "SS": "STRING SET", "NS": "NUMBER SET", "BS": "BINARY SET"}[kind]


# -- projections ----------------------------------------------------------------------------------

def project(item: Item, paths: list[Path]) -> Item:
    """Only the attributes (and nested members or list elements) the paths name."""
    out: dict[str, Any] = {}
    for path in paths:
        found = resolve(item, path)
        if found is None:
            continue
        container: dict[Any, Any] = out
        for i, element in enumerate(path.elements):
            last = i == len(path.elements) - 1
            if last:
                container[element] = copy.deepcopy(found)
                break
            nxt = path.elements[i + 1]
            holder = container.setdefault(element, {"__kind": "L" if isinstance(nxt, int) else "M"})
            if "__kind" not in holder:  # a whole attribute was already projected: keep it whole
                break
            container = holder
    return {k: _finish(val) for k, val in out.items()}


def _finish(node: dict[Any, Any]) -> Value:
    kind = node.get("__kind")
    if kind is None:
        return node
    members = {k: _finish(x) for k, x in node.items() if k != "__kind"}
    if kind == "L":
        return {"L": [members[k] for k in sorted(members)]}
    return {"M": members}


# -- legacy parameters ----------------------------------------------------------------------------

_LEGACY_OPS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}


def legacy_condition(conditions: dict[str, Any] | None, operator: str | None, *,
                     expected: bool = False) -> Condition | None:
    """Expected / QueryFilter / ScanFilter / KeyConditions as a condition tree (AND unless `OR`)."""
    if not conditions:
        return None
    parts: list[Condition] = []
    for n, (name, spec) in enumerate(conditions.items()):
        path = Path((name,))
        args = [Literal(f":legacy{n}_{i}", v.validate_value(x)) for i, x in
                enumerate(spec.get("AttributeValueList") or [])]
        op = spec.get("ComparisonOperator")
        if expected and op is None:
            if spec.get("Exists") is False:
                parts.append(Function("attribute_not_exists", (path,)))
            elif "Value" in spec and spec["Value"] is not None:
                parts.append(Compare("=", path, Literal(f":legacy{n}", v.validate_value(spec["Value"]))))
            else:
                raise v.invalid_param("Value must be provided when Exists is true")
            continue
        if op in _LEGACY_OPS:
            parts.append(Compare(_LEGACY_OPS[op], path, args[0]))
        elif op == "NOT_NULL":
            parts.append(Function("attribute_exists", (path,)))
        elif op == "NULL":
            parts.append(Function("attribute_not_exists", (path,)))
        elif op == "CONTAINS":
            parts.append(Function("contains", (path, args[0])))
        elif op == "NOT_CONTAINS":
            parts.append(Not(Function("contains", (path, args[0]))))
        elif op == "BEGINS_WITH":
            parts.append(Function("begins_with", (path, args[0])))
        elif op == "IN":
            parts.append(In(path, tuple(args)))
        elif op == "BETWEEN":
            parts.append(Between(path, args[0], args[1]))
        else:
            raise v.invalid_param(f"Unsupported operator on legacy condition: {op}")
    tree = parts[0]
    for part in parts[1:]:
        tree = Or(tree, part) if operator == "OR" else And(tree, part)
    return tree


def legacy_updates(updates: dict[str, Any]) -> list[UpdateAction]:
    actions: list[UpdateAction] = []
    for n, (name, spec) in enumerate(updates.items()):
        action = spec.get("Action") or "PUT"
        value = spec.get("Value")
        literal = Literal(f":legacy{n}", v.validate_value(value)) if value is not None else None
        path = Path((name,))
        if action == "PUT":
            if literal is None:
                raise v.invalid_param("Only DELETE action is allowed when no attribute value is specified")
            actions.append(UpdateAction("SET", path, literal))
        elif action == "DELETE":
            actions.append(UpdateAction("DELETE", path, literal) if literal else UpdateAction("REMOVE", path))
        else:
            if literal is None:
                raise v.invalid_param("Only DELETE action is allowed when no attribute value is specified")
            actions.append(UpdateAction("ADD", path, literal))
    return actions
