"""DynamoDB expressions: a tokenizer and recursive-descent parsers for condition, filter, key
condition, update and projection expressions, producing a small typed syntax tree.

It owns the grammar, placeholder substitution (`#name` from ExpressionAttributeNames, `:value` from
ExpressionAttributeValues, recording which were used so the caller can refuse unused ones) and AWS's
error texts ("Invalid ConditionExpression: Syntax error; token: \"<t>\", near: \"<n>\"", where `near`
is the text from the token before to the token after, as AWS reports it). Any input, however
garbled, ends as a tree or an `ExpressionError`; nothing else escapes. It never reads an item (the
evaluator does).

Grammar (keywords are case-insensitive)::

    condition  := or
    or         := and (OR and)*
    and        := not (AND not)*
    not        := NOT not | primary
    primary    := '(' condition ')' | function | operand comparator operand
                | operand BETWEEN operand AND operand | operand IN '(' operand (',' operand)* ')'
    function   := attribute_exists(path) | attribute_not_exists(path) | attribute_type(path, operand)
                | begins_with(operand, operand) | contains(operand, operand)
    operand    := path | :value | size(path)
    path       := name ('.' name | '[' digits ']')*          name := identifier | #placeholder
    update     := (SET set (',' set)* | REMOVE path (',' path)* | ADD path :value (',' ...)*
                  | DELETE path :value (',' ...)*)+
    set        := path '=' value_expr;   value_expr := term (('+' | '-') term)?
    term       := path | :value | if_not_exists(path, term) | list_append(term, term)
    projection := path (',' path)*
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.dynamodb.reserved import RESERVED_WORDS

MAX_EXPRESSION_BYTES = 4096
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
CONDITION_FUNCTIONS = ("attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains")
UPDATE_FUNCTIONS = ("if_not_exists", "list_append")
KNOWN_FUNCTIONS = (*CONDITION_FUNCTIONS, *UPDATE_FUNCTIONS, "size")


class ExpressionError(AwsError):
    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


# -- syntax tree ----------------------------------------------------------------------------------

PathElement = str | int


@dataclass(frozen=True)
class Path:
    elements: tuple[PathElement, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in self.elements) + "]"


@dataclass(frozen=True)
class Literal:
    placeholder: str
    value: dict[str, Any]


@dataclass(frozen=True)
class Size:
    path: Path


@dataclass(frozen=True)
class IfNotExists:
    path: Path
    default: Operand


@dataclass(frozen=True)
class ListAppend:
    first: Operand
    second: Operand


@dataclass(frozen=True)
class Arithmetic:
    op: str  # '+' or '-'
    left: Operand
    right: Operand


Operand = Path | Literal | Size | IfNotExists | ListAppend | Arithmetic


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True)
class In:
    operand: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Not:
    operand: Condition


Condition = Compare | Between | In | Function | And | Or | Not


@dataclass(frozen=True)
class UpdateAction:
    kind: str  # SET | REMOVE | ADD | DELETE
    path: Path
    value: Operand | None = None


@dataclass
class Substitutions:
    """ExpressionAttributeNames/Values of one request and which of them the expressions used."""

    names: dict[str, str] | None = None
    values: dict[str, dict[str, Any]] | None = None
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def check_unused(self) -> None:
        if self.names is not None:
            unused = sorted(set(self.names) - self.used_names)
            if unused:
                raise ExpressionError("Value provided in ExpressionAttributeNames unused in expressions: keys: {"
                                      + ", ".join(unused) + "}")
        if self.values is not None:
            unused = sorted(set(self.values) - self.used_values)
            if unused:
                raise ExpressionError("Value provided in ExpressionAttributeValues unused in expressions: keys: {"
                                      + ", ".join(unused) + "}")


# -- tokens ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # NAME, PLACEHOLDER, VALUE, NUMBER, OP, PUNCT, EOF
    text: str
    start: int
    end: int


_PUNCT = "(),.[]+-"


def _name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def tokenize(text: str, kind: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in "#:":
            i += 1
            while i < n and _name_char(text[i]):
                i += 1
            if i == start + 1:
                _syntax(text, kind, tokens, Token("PUNCT", c, start, i))
            tokens.append(Token("PLACEHOLDER" if c == "#" else "VALUE", text[start:i], start, i))
        elif c.isascii() and c.isdigit():
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            if i < n and _name_char(text[i]):
                while i < n and _name_char(text[i]):
                    i += 1
                tokens.append(Token("NAME", text[start:i], start, i))
            else:
                tokens.append(Token("NUMBER", text[start:i], start, i))
        elif c.isascii() and (c.isalpha() or c == "_"):
            while i < n and _name_char(text[i]):
                i += 1
            tokens.append(Token("NAME", text[start:i], start, i))
        elif c in "<>=":
            two = text[i:i + 2]
            if two in ("<>", "<=", ">="):
                i += 2
            else:
                i += 1
            tokens.append(Token("OP", text[start:i], start, i))
        elif c in _PUNCT:
            i += 1
            tokens.append(Token("PUNCT", c, start, i))
        else:
            i += 1
            _syntax(text, kind, tokens, Token("PUNCT", c, start, i))
    tokens.append(Token("EOF", "<EOF>", n, n))
    return tokens


def _syntax(text: str, kind: str, before: list[Token], token: Token, after: Token | None = None) -> None:
    start = before[-1].start if before else token.start
    end = after.end if after is not None and after.kind != "EOF" else token.end
    near = text[start:end]
    raise ExpressionError(f'Invalid {kind}: Syntax error; token: "{token.text}", near: "{near}"')


# -- parser ---------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str, kind: str, subs: Substitutions) -> None:
        self.text = text
        self.kind = kind
        self.subs = subs
        if not text.strip():
            raise ExpressionError(f"Invalid {kind}: The expression can not be empty;")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_EXPRESSION_BYTES:
            raise ExpressionError(f"Invalid {kind}: Expression size has exceeded the maximum allowed size; "
                                  f"expression size: {size}")
        self.tokens = tokenize(text, kind)
        self.pos = 0

    # tokens
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return token

    def error(self) -> None:
        token = self.tok
        before = self.tokens[:self.pos]
        after = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        _syntax(self.text, self.kind, before, token, after)

    def keyword(self, word: str) -> bool:
        return self.tok.kind == "NAME" and self.tok.text.upper() == word

    def expect_punct(self, p: str) -> None:
        if not (self.tok.kind == "PUNCT" and self.tok.text == p):
            self.error()
        self.advance()

    def is_punct(self, p: str) -> bool:
        return self.tok.kind == "PUNCT" and self.tok.text == p

    def end(self) -> None:
        if self.tok.kind != "EOF":
            self.error()

    # conditions
    def condition(self) -> Condition:
        left = self.and_()
        while self.keyword("OR"):
            self.advance()
            left = Or(left, self.and_())
        return left

    def and_(self) -> Condition:
        left = self.not_()
        while self.keyword("AND"):
            self.advance()
            left = And(left, self.not_())
        return left

    def not_(self) -> Condition:
        if self.keyword("NOT"):
            self.advance()
            return Not(self.not_())
        return self.primary()

    def primary(self) -> Condition:
        if self.is_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        if self.tok.kind == "NAME" and self.peek().kind == "PUNCT" and self.peek().text == "(":
            name = self.tok.text
            if name in CONDITION_FUNCTIONS:
                return self.condition_function()
            if name not in KNOWN_FUNCTIONS:
                raise ExpressionError(f"Invalid {self.kind}: Invalid function name; function: {name}")
            if name != "size":
                raise ExpressionError(f"Invalid {self.kind}: The function is not allowed to be used this way in "
                                      f"an expression; function: {name}")
        left = self.operand()
        if self.tok.kind == "OP":
            op = self.advance().text
            if op not in COMPARATORS:
                self.pos -= 1
                self.error()
            return Compare(op, left, self.operand())
        if self.keyword("BETWEEN"):
            self.advance()
            low = self.operand()
            if not self.keyword("AND"):
                self.error()
            self.advance()
            return Between(left, low, self.operand())
        if self.keyword("IN"):
            self.advance()
            self.expect_punct("(")
            options = [self.operand()]
            while self.is_punct(","):
                self.advance()
                options.append(self.operand())
            self.expect_punct(")")
            if len(options) > 100:
                raise ExpressionError(f"Invalid {self.kind}: The IN operator is provided with too many operands; "
                                      f"number of operands: {len(options)}")
            return In(left, tuple(options))
        self.error()
        raise AssertionError  # unreachable: error() raises

    def condition_function(self) -> Function:
        name = self.advance().text
        self.expect_punct("(")
        args = [self.operand()]
        while self.is_punct(","):
            self.advance()
            args.append(self.operand())
        self.expect_punct(")")
        expected = 1 if name in ("attribute_exists", "attribute_not_exists") else 2
        if len(args) != expected:
            raise ExpressionError(f"Invalid {self.kind}: Incorrect number of operands for operator or function; "
                                  f"operator or function: {name}, number of operands: {len(args)}")
        if name in ("attribute_exists", "attribute_not_exists", "attribute_type") and not isinstance(args[0], Path):
            raise ExpressionError(f"Invalid {self.kind}: Operator or function requires a document path; "
                                  f"operator or function: {name}")
        return Function(name, tuple(args))

    def operand(self) -> Operand:
        token = self.tok
        if token.kind == "VALUE":
            return self.literal()
        if token.kind == "NAME" and self.peek().kind == "PUNCT" and self.peek().text == "(":
            name = token.text
            if name == "size":
                self.advance()
                self.expect_punct("(")
                target = self.operand()
                self.expect_punct(")")
                if not isinstance(target, Path):
                    if isinstance(target, Literal):
                        kind = next(iter(target.value))
                        if kind in ("N", "BOOL", "NULL"):
                            raise ExpressionError(f"Invalid {self.kind}: Incorrect operand type for operator or "
                                                  f"function; operator or function: size, operand type: {kind}")
                    raise ExpressionError(f"Invalid {self.kind}: Operator or function requires a document path; "
                                          "operator or function: size")
                return Size(target)
            if name in KNOWN_FUNCTIONS:
                raise ExpressionError(f"Invalid {self.kind}: The function is not allowed to be used this way in an "
                                      f"expression; function: {name}")
            raise ExpressionError(f"Invalid {self.kind}: Invalid function name; function: {name}")
        if token.kind in ("NAME", "PLACEHOLDER"):
            return self.path()
        self.error()
        raise AssertionError

    def literal(self) -> Literal:
        token = self.advance()
        values = self.subs.values
        if values is None or token.text not in values:
            raise ExpressionError(f"Invalid {self.kind}: An expression attribute value used in expression is not "
                                  f"defined; attribute value: {token.text}")
        self.subs.used_values.add(token.text)
        return Literal(token.text, values[token.text])

    def name(self) -> str:
        token = self.tok
        if token.kind == "PLACEHOLDER":
            self.advance()
            names = self.subs.names
            if names is None or token.text not in names:
                raise ExpressionError(f"Invalid {self.kind}: An expression attribute name used in the document path "
                                      f"is not defined; attribute name: {token.text}")
            self.subs.used_names.add(token.text)
            return names[token.text]
        if token.kind == "NAME":
            if token.text.upper() in RESERVED_WORDS:
                raise ExpressionError(f"Invalid {self.kind}: Attribute name is a reserved keyword; reserved "
                                      f"keyword: {token.text}")
            self.advance()
            return token.text
        self.error()
        raise AssertionError

    def path(self) -> Path:
        elements: list[PathElement] = [self.name()]
        while True:
            if self.is_punct("."):
                self.advance()
                elements.append(self.name())
            elif self.is_punct("["):
                self.advance()
                if self.tok.kind != "NUMBER":
                    self.error()
                elements.append(int(self.advance().text))
                self.expect_punct("]")
            else:
                return Path(tuple(elements))

    # updates
    def update(self) -> list[UpdateAction]:
        actions: list[UpdateAction] = []
        seen: set[str] = set()
        if self.tok.kind == "EOF":
            self.error()
        while self.tok.kind != "EOF":
            word = self.tok.text.upper() if self.tok.kind == "NAME" else ""
            if word not in ("SET", "REMOVE", "ADD", "DELETE"):
                self.error()
            if word in seen:
                raise ExpressionError(f'Invalid UpdateExpression: The "{word}" section can only be used once in an '
                                      "update expression;")
            seen.add(word)
            self.advance()
            while True:
                actions.append(self.update_action(word))
                if not self.is_punct(","):
                    break
                self.advance()
        _check_overlaps(actions)
        return actions

    def update_action(self, word: str) -> UpdateAction:
        path = self.path()
        if word == "SET":
            if not (self.tok.kind == "OP" and self.tok.text == "="):
                self.error()
            self.advance()
            return UpdateAction(word, path, self.value_expr())
        if word == "REMOVE":
            return UpdateAction(word, path)
        if self.tok.kind != "VALUE":
            self.error()
        return UpdateAction(word, path, self.literal())

    def value_expr(self) -> Operand:
        left = self.term()
        if self.is_punct("+") or self.is_punct("-"):
            op = self.advance().text
            return Arithmetic(op, left, self.term())
        return left

    def term(self) -> Operand:
        token = self.tok
        if token.kind == "NAME" and self.peek().kind == "PUNCT" and self.peek().text == "(":
            name = token.text
            if name not in KNOWN_FUNCTIONS:
                raise ExpressionError(f"Invalid UpdateExpression: Invalid function name; function: {name}")
            if name not in UPDATE_FUNCTIONS:
                raise ExpressionError("Invalid UpdateExpression: The function is not allowed in an update "
                                      f"expression; function: {name}")
            self.advance()
            self.expect_punct("(")
            first = self.value_expr() if name == "list_append" else self.path_or_error(name)
            self.expect_punct(",")
            second = self.value_expr()
            self.expect_punct(")")
            if isinstance(first, Path) and name == "if_not_exists":
                return IfNotExists(first, second)
            return ListAppend(first, second)
        if token.kind == "VALUE":
            return self.literal()
        if token.kind in ("NAME", "PLACEHOLDER"):
            return self.path()
        self.error()
        raise AssertionError

    def path_or_error(self, name: str) -> Path:
        if self.tok.kind not in ("NAME", "PLACEHOLDER"):
            if self.tok.kind == "VALUE":
                raise ExpressionError("Invalid UpdateExpression: Operator or function requires a document path; "
                                      f"operator or function: {name}")
            self.error()
        return self.path()

    # projections
    def projection(self) -> list[Path]:
        paths = [self.path()]
        while self.is_punct(","):
            self.advance()
            paths.append(self.path())
        self.end()
        return paths


def _check_overlaps(actions: list[UpdateAction]) -> None:
    seen: list[Path] = []
    for action in actions:
        for other in seen:
            a, b = action.path.elements, other.elements
            shorter = min(len(a), len(b))
            if a[:shorter] == b[:shorter]:
                raise ExpressionError("Invalid UpdateExpression: Two document paths overlap with each other; must "
                                      f"remove or rewrite one of these paths; path one: {other}, path two: "
                                      f"{action.path}")
        seen.append(action.path)


def parse_condition(text: str, subs: Substitutions, kind: str = "ConditionExpression") -> Condition:
    parser = _Parser(text, kind, subs)
    tree = parser.condition()
    parser.end()
    return tree


def parse_update(text: str, subs: Substitutions) -> list[UpdateAction]:
    return _Parser(text, "UpdateExpression", subs).update()


def parse_projection(text: str, subs: Substitutions) -> list[Path]:
    return _Parser(text, "ProjectionExpression", subs).projection()


def paths_in(node: Condition | Operand) -> list[Path]:
    """Every document path a condition or operand reads."""
    if isinstance(node, Path):
        return [node]
    if isinstance(node, Literal):
        return []
    if isinstance(node, Size):
        return [node.path]
    if isinstance(node, IfNotExists):
        return [node.path, *paths_in(node.default)]
    if isinstance(node, (ListAppend,)):
        return [*paths_in(node.first), *paths_in(node.second)]
    if isinstance(node, (Arithmetic, Compare)):
        return [*paths_in(node.left), *paths_in(node.right)]
    if isinstance(node, Between):
        return [*paths_in(node.operand), *paths_in(node.low), *paths_in(node.high)]
    if isinstance(node, In):
        return [p for o in (node.operand, *node.options) for p in paths_in(o)]
    if isinstance(node, Function):
        return [p for a in node.args for p in paths_in(a)]
    if isinstance(node, (And, Or)):
        return [*paths_in(node.left), *paths_in(node.right)]
    return paths_in(node.operand)
