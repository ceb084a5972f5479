"""Parse FQL tokens into a small, immutable syntax tree.

The tree is what both compilers read: `evaluate.py` turns it into closures for full FQL and
`subscriptions.py` checks it against the Actions trigger subset. Grammar, loosest binding first:

    expression := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "!" unary | comparison
    comparison := operand [("=" | "!=" | "<" | "<=" | ">" | ">=" | "in") operand]
    operand    := string | number | "true" | "false" | "null" | list
                | "(" expression ")" | name "(" [expression ("," expression)*] ")" | path
    list       := "[" [literal ("," literal)* [","]] "]"

So `!type = 'track'` negates the comparison, and `a and b or c` is `(a and b) or c`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sluice.fql import lexer
from sluice.fql.errors import FqlError
from sluice.fql.lexer import Token

MAX_DEPTH: Final = 64  # nesting of parentheses, lists, calls and `!`; deeper is surely a mistake
COMPARISON_OPERATORS: Final = frozenset({"=", "!=", "<", "<=", ">", ">=", "in"})


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # None, bool, int, float, str, or a tuple of literal values for a list
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    segments: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node
    pos: int  # of the operator


@dataclass(frozen=True, slots=True)
class Group:
    """Parentheses, kept so the trigger subset can count their levels."""

    inner: Node
    pos: int


Node = Literal | Path | Call | Not | And | Or | Compare | Group

_KEYWORD_VALUES: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}


def parse(expr: str) -> Node:
    """The syntax tree of `expr`; raises FqlError with the position of the first problem."""
    return _Parser(expr).parse()


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = lexer.tokenize(expr)
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        if self.peek().kind == lexer.EOF:
            raise self.error("empty expression", self.peek())
        node = self.or_expr()
        token = self.peek()
        if token.kind != lexer.EOF:
            hint = " (combine conditions with 'and' / 'or')" if _starts_operand(token) else ""
            raise self.error(f"unexpected {token.describe()}{hint}", token)
        return node

    # Helpers.

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != lexer.EOF:
            self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == lexer.KEYWORD and token.value == word

    def expect(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            raise self.error(f"expected {what}, found {token.describe()}", token)
        return self.advance()

    def error(self, message: str, token: Token) -> FqlError:
        return FqlError(message, self.expr, token.pos)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels", token)

    # Grammar.

    def or_expr(self) -> Node:
        first = self.peek()
        items = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items), first.pos)

    def and_expr(self) -> Node:
        first = self.peek()
        items = [self.unary()]
        while self.at_keyword("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items), first.pos)

    def unary(self) -> Node:
        token = self.peek()
        if token.kind != lexer.NOT:
            return self.comparison()
        self.advance()
        self.enter(token)
        operand = self.unary()
        self.depth -= 1
        return Not(operand, token.pos)

    def comparison(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token.kind == lexer.OP or (token.kind == lexer.KEYWORD and token.value == "in"):
            self.advance()
            right = self.operand()
            after = self.peek()
            if after.kind == lexer.OP or (after.kind == lexer.KEYWORD and after.value == "in"):
                raise self.error("comparisons cannot be chained; use 'and'", after)
            return Compare(str(token.value), left, right, token.pos)
        return left

    def operand(self) -> Node:
        token = self.peek()
        kind = token.kind
        if kind in (lexer.STRING, lexer.NUMBER):
            self.advance()
            return Literal(token.value, token.pos)
        if kind == lexer.KEYWORD and token.value in _KEYWORD_VALUES:
            self.advance()
            return Literal(_KEYWORD_VALUES[token.value], token.pos)
        if kind == lexer.LBRACK:
            return self.list_literal()
        if kind == lexer.LPAREN:
            self.advance()
            self.enter(token)
            inner = self.or_expr()
            self.depth -= 1
            self.expect(lexer.RPAREN, "')'")
            return Group(inner, token.pos)
        if kind == lexer.PATH:
            self.advance()
            if self.peek().kind == lexer.LPAREN:
                return self.call(token)
            return Path(token.value, token.pos)
        if kind == lexer.EOF:
            raise self.error("expected a value, a field or '(' but the expression ends", token)
        raise self.error(f"expected a value, a field or '(', found {token.describe()}", token)

    def call(self, name: Token) -> Node:
        if name.escaped or len(name.value) != 1:
            raise self.error(f"{name.describe()} is not a function name", name)
        self.enter(name)
        self.advance()  # "("
        args: list[Node] = []
        if self.peek().kind != lexer.RPAREN:
            args.append(self.or_expr())
            while self.peek().kind == lexer.COMMA:
                self.advance()
                args.append(self.or_expr())
        self.expect(lexer.RPAREN, "',' or ')'")
        self.depth -= 1
        return Call(name.value[0], tuple(args), name.pos)

    def list_literal(self) -> Literal:
        start = self.advance()  # "["
        self.enter(start)
        values: list[Any] = []
        while self.peek().kind != lexer.RBRACK:
            token = self.peek()
            if token.kind == lexer.LBRACK:
                values.append(self.list_literal().value)
            elif token.kind in (lexer.STRING, lexer.NUMBER):
                values.append(self.advance().value)
            elif token.kind == lexer.KEYWORD and token.value in _KEYWORD_VALUES:
                values.append(_KEYWORD_VALUES[self.advance().value])
            else:
                raise self.error(f"lists hold literal values, found {token.describe()}", token)
            if self.peek().kind == lexer.COMMA:
                self.advance()
            elif self.peek().kind != lexer.RBRACK:
                after = self.peek()
                raise self.error(f"expected ',' or ']', found {after.describe()}", after)
        self.advance()  # "]"
        self.depth -= 1
        return Literal(tuple(values), start.pos)


def _starts_operand(token: Token) -> bool:
    return token.kind in (lexer.PATH, lexer.STRING, lexer.NUMBER, lexer.LPAREN, lexer.NOT)
