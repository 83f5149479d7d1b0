"""PartiQL for DynamoDB: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction with simple
SELECT, INSERT, UPDATE and DELETE statements.

It owns a small tokenizer and parser of the statements DynamoDB documents::

    SELECT * | path, ... FROM "table"[."index"] [WHERE condition]
    INSERT INTO "table" VALUE {'attr': value, ...}
    UPDATE "table" (SET path = value | REMOVE path)... WHERE condition
    DELETE FROM "table" WHERE condition

Values are PartiQL literals ('text', numbers, TRUE/FALSE, NULL, {maps}, [lists], <<sets>>) or `?`
parameters; conditions use =, <>, !=, <, <=, >, >=, BETWEEN, IN [...], AND, OR, NOT, IS [NOT]
MISSING and the functions begins_with/contains/attribute_type/size. Conditions become the same
syntax tree as expressions (evaluate.py runs them). A SELECT whose WHERE fixes the partition key
reads that partition; any other SELECT scans (as DynamoDB does). UPDATE and DELETE must name the
whole primary key with equalities; an UPDATE of an absent item, or one whose other conditions fail,
is a ConditionalCheckFailedException; INSERT of an existing key is a DuplicateItemException. A SELECT
through ExecuteStatement pages as AWS does: a page ends after `Limit` items were evaluated or 1 MB
was read, and its NextToken (opaque, bound to the statement's text) starts the next.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb import checks as rq
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.evaluate import apply_update, check, project
from hearth.services.dynamodb.expressions import (
    And,
    Between,
    Compare,
    Condition,
    Function,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    Size,
    UpdateAction,
)
from hearth.services.dynamodb.items_api import condition_failed
from hearth.services.dynamodb.store import SEGMENT_SPACE, Row, Table, TableStore, Writer
from hearth.services.dynamodb.values import Item

PAGE_BYTES = 1024 * 1024
FETCH = 256  # rows read from the store per step of a page


def _token(after: tuple[int, str, str, str], statement: str) -> str:
    """An opaque NextToken: where the next page starts, bound to the statement it pages."""
    body = json.dumps([list(after), hashlib.sha256(statement.encode()).hexdigest()[:16]])
    return base64.urlsafe_b64encode(body.encode()).decode()


def _read_token(token: str, statement: str) -> tuple[int, str, str, str]:
    try:
        after, digest = json.loads(base64.urlsafe_b64decode(token.encode()))
        seg, hk, sk, pk = after
        if digest != hashlib.sha256(statement.encode()).hexdigest()[:16]:
            raise ValueError("another statement's token")
        return int(seg), str(hk), str(sk), str(pk)
    except (ValueError, TypeError):
        raise AwsError("ValidationException", "Invalid NextToken") from None
BATCH_ERROR_CODES = {"ValidationException": "ValidationError", "ResourceNotFoundException": "ResourceNotFound",
                     "ConditionalCheckFailedException": "ConditionalCheckFailed",
                     "DuplicateItemException": "DuplicateItem"}
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><<|>>|<>|!=|<=|>=|[=<>(),.\[\]{}:?*])
)""", re.VERBOSE)


def _bad(detail: str) -> AwsError:
    return AwsError("ValidationException", f"Statement wasn't well formed, can't be processed: {detail}")


@dataclass
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad(f"Unexpected token: {text[pos:].strip()[:1]}")
        kind = m.lastgroup or "op"
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    out.append(_Tok("eof", "<EOF>"))
    return out


@dataclass
class Statement:
    verb: str
    table: str
    index: str | None = None
    columns: list[Path] | None = None
    where: Condition | None = None
    item: Item | None = None
    actions: list[UpdateAction] | None = None


class _Parser:
    def __init__(self, text: str, params: list[dict[str, Any]]) -> None:
        self.toks = _tokenize(text)
        self.pos = 0
        self.params = params
        self.used = 0
        self.n = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.pos]

    def next(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "name" and self.tok.text.upper() in words

    def kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise _bad(f"Expected {word}, found {self.tok.text}")
        self.next()

    def op(self, text: str) -> None:
        if not (self.tok.kind == "op" and self.tok.text == text):
            raise _bad(f"Expected {text}, found {self.tok.text}")
        self.next()

    def is_op(self, text: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == text

    def ident(self) -> str:
        tok = self.next()
        if tok.kind == "qid":
            return tok.text[1:-1].replace('""', '"')
        if tok.kind == "name":
            return tok.text
        raise _bad(f"Expected an identifier, found {tok.text}")

    def statement(self) -> Statement:
        if self.is_kw("SELECT"):
            self.next()
            columns: list[Path] | None = None
            if self.is_op("*"):
                self.next()
            else:
                columns = [self.path()]
                while self.is_op(","):
                    self.next()
                    columns.append(self.path())
            self.kw("FROM")
            table = self.ident()
            index = None
            if self.is_op("."):
                self.next()
                index = self.ident()
            where = self.where(optional=True)
            stmt = Statement("SELECT", table, index, columns, where)
        elif self.is_kw("INSERT"):
            self.next()
            self.kw("INTO")
            table = self.ident()
            self.kw("VALUE")
            value = self.value()
            if "M" not in value:
                raise _bad("INSERT needs a map VALUE")
            stmt = Statement("INSERT", table, item=v.validate_item(value["M"]))
        elif self.is_kw("UPDATE"):
            self.next()
            table = self.ident()
            actions: list[UpdateAction] = []
            while self.is_kw("SET", "REMOVE"):
                word = self.next().text.upper()
                path = self.path()
                if word == "SET":
                    self.op("=")
                    actions.append(UpdateAction("SET", path, self.literal()))
                else:
                    actions.append(UpdateAction("REMOVE", path))
                while self.is_op(","):
                    self.next()
                    path = self.path()
                    if word == "SET":
                        self.op("=")
                        actions.append(UpdateAction("SET", path, self.literal()))
                    else:
                        actions.append(UpdateAction("REMOVE", path))
            if not actions:
                raise _bad(f"Expected SET or REMOVE, found {self.tok.text}")
            stmt = Statement("UPDATE", table, where=self.where(optional=False), actions=actions)
        elif self.is_kw("DELETE"):
            self.next()
            self.kw("FROM")
            table = self.ident()
            stmt = Statement("DELETE", table, where=self.where(optional=False))
        else:
            raise _bad(f"Unexpected keyword: {self.tok.text}")
        if self.tok.kind != "eof":
            raise _bad(f"Unexpected token: {self.tok.text}")
        if self.used != len(self.params):
            raise AwsError("ValidationException", "Number of parameters in request and statement don't match.")
        return stmt

    def where(self, *, optional: bool) -> Condition | None:
        if not self.is_kw("WHERE"):
            if optional:
                return None
            raise _bad("Where clause is mandatory")
        self.next()
        return self.condition()

    def path(self) -> Path:
        elements: list[str | int] = [self.ident()]
        while True:
            if self.is_op("."):
                self.next()
                elements.append(self.ident())
            elif self.is_op("["):
                self.next()
                tok = self.next()
                if tok.kind != "num" or not tok.text.isdigit():
                    raise _bad(f"Expected a list index, found {tok.text}")
                elements.append(int(tok.text))
                self.op("]")
            else:
                return Path(tuple(elements))

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.is_kw("OR"):
            self.next()
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.is_kw("AND"):
            self.next()
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.is_kw("NOT"):
            self.next()
            return Not(self.negation())
        if self.is_op("("):
            self.next()
            inner = self.condition()
            self.op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        if self.tok.kind == "name" and self.toks[self.pos + 1].text == "(":
            name = self.next().text.lower()
            self.op("(")
            args = [self.operand()]
            while self.is_op(","):
                self.next()
                args.append(self.operand())
            self.op(")")
            if name == "size":
                if not isinstance(args[0], Path):
                    raise _bad("size needs a path")
                left: Operand = Size(args[0])
            elif name in ("begins_with", "contains", "attribute_type", "attribute_exists", "attribute_not_exists"):
                return Function(name, tuple(args))
            else:
                raise _bad(f"Unknown function: {name}")
        else:
            left = self.operand()
        if self.is_kw("IS"):
            self.next()
            negated = self.is_kw("NOT")
            if negated:
                self.next()
            self.kw("MISSING")
            if not isinstance(left, Path):
                raise _bad("IS MISSING needs a path")
            return Function("attribute_exists" if negated else "attribute_not_exists", (left,))
        if self.is_kw("BETWEEN"):
            self.next()
            low = self.operand()
            self.kw("AND")
            return Between(left, low, self.operand())
        if self.is_kw("IN"):
            self.next()
            closing = "]" if self.is_op("[") else ")"
            self.next()
            options = [self.operand()]
            while self.is_op(","):
                self.next()
                options.append(self.operand())
            self.op(closing)
            return In(left, tuple(options))
        tok = self.next()
        if tok.kind != "op" or tok.text not in ("=", "<>", "!=", "<", "<=", ">", ">="):
            raise _bad(f"Unexpected token: {tok.text}")
        return Compare("<>" if tok.text == "!=" else tok.text, left, self.operand())

    def operand(self) -> Operand:
        if self.tok.kind in ("qid", "name") and not self.is_kw("TRUE", "FALSE", "NULL"):
            return self.path()
        return self.literal()

    def literal(self) -> Literal:
        self.n += 1
        return Literal(f":partiql{self.n}", self.value())

    def value(self) -> dict[str, Any]:
        tok = self.next()
        if tok.kind == "str":
            return {"S": tok.text[1:-1].replace("''", "'")}
        if tok.kind == "num":
            return {"N": v.normalize_number(tok.text)}
        if tok.kind == "name" and tok.text.upper() in ("TRUE", "FALSE"):
            return {"BOOL": tok.text.upper() == "TRUE"}
        if tok.kind == "name" and tok.text.upper() == "NULL":
            return {"NULL": True}
        if tok.text == "?":
            if self.used >= len(self.params):
                raise AwsError("ValidationException", "Number of parameters in request and statement don't match.")
            self.used += 1
            return v.validate_value(self.params[self.used - 1])
        if tok.text == "{":
            members: dict[str, Any] = {}
            while not self.is_op("}"):
                key = self.next()
                if key.kind != "str":
                    raise _bad(f"Expected a string key, found {key.text}")
                self.op(":")
                members[key.text[1:-1].replace("''", "'")] = self.value()
                if not self.is_op("}"):
                    self.op(",")
            self.next()
            return {"M": members}
        if tok.text in ("[", "<<"):
            closing = "]" if tok.text == "[" else ">>"
            elements = []
            while not self.is_op(closing):
                elements.append(self.value())
                if not self.is_op(closing):
                    self.op(",")
            self.next()
            if closing == "]":
                return {"L": elements}
            kinds = {v.kind_of(e) for e in elements}
            if len(kinds) != 1 or next(iter(kinds)) not in ("S", "N", "B"):
                raise _bad("A set holds strings, numbers or binaries of one type")
            kind = next(iter(kinds))
            return v.validate_value({kind + "S": [e[kind] for e in elements]})
        raise _bad(f"Unexpected token: {tok.text}")


def _equalities(tree: Condition | None) -> tuple[dict[str, dict[str, Any]], list[Condition]]:
    """Top-level `path = literal` conjuncts by attribute, and the other conjuncts."""
    parts: list[Condition] = []
    stack: list[Condition] = [tree] if tree is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack += [node.right, node.left]
        else:
            parts.append(node)
    eq: dict[str, dict[str, Any]] = {}
    rest: list[Condition] = []
    for part in parts:
        if (isinstance(part, Compare) and part.op == "=" and isinstance(part.left, Path)
                and len(part.left.elements) == 1 and isinstance(part.right, Literal)
                and str(part.left.elements[0]) not in eq):
            eq[str(part.left.elements[0])] = part.right.value
        else:
            rest.append(part)
    return eq, rest


class PartiqlProvider:
    def __init__(self, store: TableStore) -> None:
        self.store = store

    def _table(self, ctx: RequestContext, name: str) -> Table:
        found = self.store.get_table(ctx.account_id, ctx.region, name)
        if found is None:
            raise rq.not_found()
        return found

    def _run(self, ctx: RequestContext, text: str, params: list[dict[str, Any]],
             on_failure: str | None = None) -> dict[str, Any]:
        stmt = _Parser(text, params).statement()
        t = self._table(ctx, stmt.table)
        if stmt.verb == "SELECT":
            return {"Items": self._select(t, stmt)[0], "TableName": t.name}
        with self.store.tx() as w:
            self._write(w, t, stmt, on_failure)
        return {"Items": [], "TableName": t.name}

    @staticmethod
    def _write(w: Writer, t: Table, stmt: Statement, on_failure: str | None) -> None:
        """One INSERT, UPDATE or DELETE inside the caller's transaction (raises to refuse it)."""
        if stmt.verb == "INSERT":
            assert stmt.item is not None
            item = rq.item(t, stmt.item)
            if w.get(t, t.key_of(item)) is not None:
                raise AwsError("DuplicateItemException", "Duplicate primary key exists in table")
            w.put(t, None, item)
            return
        eq, rest = _equalities(stmt.where)
        if not all(k in eq for k in t.key_names):
            raise AwsError("ValidationException",
                           "Where clause does not contain a mandatory equality on all key attributes")
        key = rq.key(t, {k: eq[k] for k in t.key_names})
        extra = [Compare("=", Path((k,)), Literal(f":eq_{k}", val)) for k, val in eq.items() if k not in t.key_names]
        conditions = extra + rest
        failure = {"ReturnValuesOnConditionCheckFailure": on_failure}
        old = w.get(t, key)
        if stmt.verb == "UPDATE" and old is None:
            raise condition_failed(None, failure)
        if old is not None and not all(check(old, c) for c in conditions):
            raise condition_failed(old, failure)
        if old is None:
            return
        new = None if stmt.verb == "DELETE" else apply_update(old, stmt.actions or [], t.key_names)
        if new is not None:
            rq.check_index_keys(t, new)
            v.check_item_size(new)
        w.put(t, old, new)

    def execute_transaction(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """All reads or all writes; writes happen in one transaction, or none (reasons per statement)."""
        parsed = []
        for entry in params["TransactStatements"]:
            stmt = _Parser(entry["Statement"], list(entry.get("Parameters") or [])).statement()
            parsed.append((stmt, self._table(ctx, stmt.table), entry.get("ReturnValuesOnConditionCheckFailure")))
        reads = [stmt.verb == "SELECT" for stmt, _, _ in parsed]
        if any(reads) and not all(reads):
            raise v.invalid("Transaction must contain either all reads or all writes")
        if all(reads):
            responses = []
            for stmt, t, _ in parsed:
                items = self._select(t, stmt)[0]
                responses.append({"Item": items[0]} if items else {})
            return {"Responses": responses}
        with self.store.tx() as w:
            reasons: list[dict[str, Any]] = []
            for stmt, t, on_failure in parsed:
                try:
                    self._write(w, t, stmt, on_failure)
                    reasons.append({"Code": "None"})
                except AwsError as err:
                    if err.code == "ValidationException":
                        raise
                    reason = {"Code": err.code.removesuffix("Exception"), "Message": err.message}
                    if "Item" in err.fields:
                        reason["Item"] = err.fields["Item"]
                    reasons.append(reason)
            if any(r["Code"] != "None" for r in reasons):
                codes = ", ".join(r["Code"] for r in reasons)
                raise AwsError("TransactionCanceledException",
                               "Transaction cancelled, please refer cancellation reasons for specific reasons "
                               f"[{codes}]", fields={"CancellationReasons": reasons}, message_key="Message")
        return {"Responses": []}  # AWS answers a write transaction with an empty list, not without one

    def _select(self, t: Table, stmt: Statement, limit: int | None = None,
                start: tuple[int, str, str, str] | None = None) -> tuple[list[Item], tuple[int, str, str, str] | None]:
        """The items of one page and where the next page starts (None: this was the last). A page ends
        when `limit` items were evaluated (before the WHERE filter, as AWS counts) or 1 MB was read."""
        index = t.index(stmt.index) if stmt.index else None
        if stmt.index and index is None:
            raise AwsError("ValidationException", f"The table does not have the specified index: {stmt.index}")
        hash_key = index.hash_key if index else t.hash_key
        eq, _ = _equalities(stmt.where)
        idx = index.name if index else ""
        rows: list[Row] = []
        size = 0
        after = start
        stopped = False
        while not stopped:
            want = FETCH if limit is None else min(FETCH, limit - len(rows))
            if hash_key in eq:
                batch = self.store.query(t, idx, v.encode_key(eq[hash_key]), None, None, True,
                                         (after[2], after[3]) if after else None, want)
            else:
                batch = self.store.scan(t, idx, (0, SEGMENT_SPACE), after, want)
            for row in batch:
                rows.append(row)
                size += row.size
                if (limit is not None and len(rows) >= limit) or size >= PAGE_BYTES:
                    stopped = True
                    break
            if len(batch) < want:
                break
            last = rows[-1]
            after = (last.seg, last.hk, last.sk, last.pk)
        items = [r.item for r in rows if stmt.where is None or check(r.item, stmt.where)]
        items = [project(i, stmt.columns) for i in items] if stmt.columns else items
        if not stopped or not rows:
            return items, None
        last = rows[-1]
        return items, (last.seg, last.hk, last.sk, last.pk)

    def execute_statement(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        text = params["Statement"]
        stmt = _Parser(text, list(params.get("Parameters") or [])).statement()
        t = self._table(ctx, stmt.table)
        if stmt.verb != "SELECT":
            with self.store.tx() as w:
                self._write(w, t, stmt, params.get("ReturnValuesOnConditionCheckFailure"))
            return {"Items": []}
        limit = int(params["Limit"]) if params.get("Limit") is not None else None
        start = _read_token(params["NextToken"], text) if params.get("NextToken") else None
        items, after = self._select(t, stmt, limit, start)
        out: dict[str, Any] = {"Items": items}
        if after is not None:
            out["NextToken"] = _token(after, text)
        return out

    def batch_execute_statement(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        responses: list[dict[str, Any]] = []
        for entry in params["Statements"]:
            try:
                out = self._run(ctx, entry["Statement"], list(entry.get("Parameters") or []),
                                entry.get("ReturnValuesOnConditionCheckFailure"))
                response: dict[str, Any] = {"TableName": out["TableName"]}
                if out.get("Items"):
                    response["Item"] = out["Items"][0]
                responses.append(response)
            except AwsError as err:
                code = BATCH_ERROR_CODES.get(err.code, "ValidationError")
                responses.append({"Error": {"Code": code, "Message": err.message}})
        return {"Responses": responses}

