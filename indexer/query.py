"""The search box's language, parsed here so user text never reaches OpenSearch as a query string.

Grammar (Lucene-like, the part people type during an incident)::

    query   := or EOF                      (empty text matches everything)
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*      (juxtaposition is AND)
    unary   := ("NOT" | "-" | "+") unary | primary
    primary := "(" or ")" | FIELD ":" (value | "(" or ")") | value
    value   := word | "phrase"             (words may hold * and ?; backslash escapes any character)

Field names come from an allow-list built from pang's index templates (text
fields get ``match``/``match_phrase``, keyword fields ``term``/``prefix``/
``wildcard``, numbers ``term``/``range``, ``field:*`` is ``exists``) plus the
dynamic ``app.*`` and ``labels.*`` keywords. The output uses only the query
types in :data:`ALLOWED_QUERIES`: no ``query_string``, ``regexp`` or script can
come out, whatever the input. Input size, nesting and clause count are
bounded, and a leading wildcard on a text field is refused (it would scan
every term of the index).

A hand-written recursive-descent parser (about 150 lines) was chosen over a
parser library: the grammar is tiny, errors need exact character positions
and sentences of our own, and a dependency would buy little.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from pang.indexer.templates import APP, ECS_BASE, SYSLOG

__all__ = [
    "ALLOWED_QUERIES", "FIELD_ALIASES", "KEYWORD_FIELDS", "MAX_CLAUSES", "MAX_DEPTH", "MAX_QUERY_CHARS",
    "NUMERIC_FIELDS", "QuerySyntaxError", "TEXT_FIELDS", "parse_query",
]

MAX_QUERY_CHARS = 2000
MAX_DEPTH = 16  # parentheses and NOTs inside each other
MAX_CLAUSES = 64  # leaf queries; far below OpenSearch's own 1024 limit
DEFAULT_FIELD = "message"

ALLOWED_QUERIES = frozenset(
    {"bool", "match", "match_phrase", "term", "prefix", "wildcard", "exists", "range", "match_all"}
)

TEXT_FIELDS = frozenset({"message", "error.message", "error.stack_trace"})
FIELD_ALIASES = {
    "service": "service.name", "level": "log.level", "host": "host.name", "logger": "log.logger",
    "trace": "trace.id", "action": "event.action", "dataset": "event.dataset", "status": "http.response.status_code",
    "path": "url.path", "user": "user.id", "error": "error.message", "msg": "message",
}
DYNAMIC_PREFIXES = ("app.", "labels.")  # strings are keywords there (templates: strings_as_keywords)
_LEVEL_ALIASES = {"WARNING": "WARN"}


def _fields_by_type(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in props.items():
        path = prefix + name
        if "properties" in spec:
            out.update(_fields_by_type(spec["properties"], path + "."))
        elif spec.get("index", True) and "type" in spec:
            out[path] = spec["type"]
    return out


_MAPPED = {**_fields_by_type(ECS_BASE), **_fields_by_type(APP), **_fields_by_type(SYSLOG)}
KEYWORD_FIELDS = frozenset(f for f, t in _MAPPED.items() if t == "keyword")
NUMERIC_FIELDS = frozenset(f for f, t in _MAPPED.items() if t in ("long", "double"))
IP_FIELDS = frozenset(f for f, t in _MAPPED.items() if t == "ip")
_COMMON = ["message", "error.message", "error.stack_trace", "service.name", "log.level", "host.name", "log.logger",
           "trace.id", "event.action", "url.path", "user.id", "error.type", "http.response.status_code", "tags"]
_ALL_NAMES = sorted(TEXT_FIELDS | KEYWORD_FIELDS | NUMERIC_FIELDS | IP_FIELDS | set(FIELD_ALIASES))

_FIELD_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@-]{0,127}")
_DYNAMIC_NAME = re.compile(r"(?:app|labels)(?:\.[A-Za-z0-9_@-]+)+")
_NUMBER = re.compile(r"-?\d{1,18}(?:\.\d{1,12})?")
_COMPARISON = re.compile(r"(>=|<=|>|<)(-?\d{1,18}(?:\.\d{1,12})?)")


class QuerySyntaxError(ValueError):
    """Text that is not a query; ``position`` is the 0-based character index where the problem is."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at character {position + 1}")
        self.message = message
        self.position = position


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Tok:
    kind: str  # "(" ")" "word" "phrase" "field" "AND" "OR" "NOT" "-" "+" "end"
    pos: int
    text: str = ""  # words: raw (escapes kept); phrases: unescaped; fields: the name
    end: int = 0


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(_Tok(c, i))
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise QuerySyntaxError("unclosed quote", i)
            out.append(_Tok("phrase", i, "".join(buf), j + 1))
            i = j + 1
        elif c in "+-" and i + 1 < n and not text[i + 1].isspace() and (not out or out[-1].kind != "field"):
            out.append(_Tok(c, i))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                if text[j] == "\\":
                    if j + 1 >= n:
                        raise QuerySyntaxError("a backslash needs a character after it", j)
                    j += 1
                j += 1
            word = text[i:j]
            colon = _unescaped_colon(word)
            if colon > 0 and _FIELD_NAME.fullmatch(word[:colon]):
                out.append(_Tok("field", i, word[:colon], i + colon + 1))
                if colon + 1 < len(word):
                    out.append(_Tok("word", i + colon + 1, word[colon + 1:], j))
            elif word in ("AND", "OR", "NOT"):
                out.append(_Tok(word, i))
            elif word in ("-", "+"):
                raise QuerySyntaxError(f"'{word}' needs a term right after it", i)
            else:
                out.append(_Tok("word", i, word, j))
            i = j
    out.append(_Tok("end", n))
    return out


def _unescaped_colon(word: str) -> int:
    i = 0
    while i < len(word):
        if word[i] == "\\":
            i += 2
            continue
        if word[i] == ":":
            return i
        i += 1
    return -1


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.clauses = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> dict[str, Any]:
        if self.peek().kind == "end":
            return {"match_all": {}}
        node = self.or_(None, 0)
        tok = self.peek()
        if tok.kind == ")":
            raise QuerySyntaxError("')' without a matching '('", tok.pos)
        if tok.kind != "end":  # cannot happen: and_() consumes all but ")" and "end"
            raise QuerySyntaxError("unexpected text", tok.pos)
        return node

    def or_(self, field: str | None, depth: int) -> dict[str, Any]:
        parts = [self.and_(field, depth)]
        while self.peek().kind == "OR":
            self._operand_follows(self.take())
            parts.append(self.and_(field, depth))
        return parts[0] if len(parts) == 1 else _bool(should=parts)

    def and_(self, field: str | None, depth: int) -> dict[str, Any]:
        must: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        while True:
            negated, node = self.unary(field, depth)
            (must_not if negated else must).append(node)
            kind = self.peek().kind
            if kind == "AND":
                self._operand_follows(self.take())
            elif kind in ("OR", ")", "end"):
                break
        if len(must) == 1 and not must_not:
            return must[0]
        return _bool(must=must, must_not=must_not)

    def _operand_follows(self, op: _Tok) -> None:
        if self.peek().kind in ("end", ")"):
            raise QuerySyntaxError(f"'{op.kind}' needs a term after it", op.pos)

    def unary(self, field: str | None, depth: int) -> tuple[bool, dict[str, Any]]:
        """(negated, query): NOT is kept apart so ``a -b`` becomes one bool with must and must_not."""
        tok = self.peek()
        if depth >= MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests deeper than {MAX_DEPTH} levels", tok.pos)
        if tok.kind in ("NOT", "-", "+"):
            self.take()
            if self.peek().kind in ("end", ")", "OR", "AND"):
                raise QuerySyntaxError(f"'{tok.kind}' needs a term after it", tok.pos)
            negated, node = self.unary(field, depth + 1)
            return (not negated, node) if tok.kind != "+" else (negated, node)
        return False, self.primary(field, depth)

    def primary(self, field: str | None, depth: int) -> dict[str, Any]:
        tok = self.take()
        if tok.kind == "(":
            if self.peek().kind == ")":
                raise QuerySyntaxError("empty parentheses", tok.pos)
            if self.peek().kind == "end":
                raise QuerySyntaxError("'(' is never closed", tok.pos)
            node = self.or_(field, depth + 1)
            if self.take().kind != ")":
                raise QuerySyntaxError("'(' is never closed", tok.pos)
            return node
        if tok.kind == "field":
            if field is not None:
                raise QuerySyntaxError(f"a field inside '{field}:( )' cannot name another field", tok.pos)
            name = _resolve_field(tok.text, tok.pos)
            value = self.peek()
            if value.kind == "(":
                return self.primary(name, depth + 1)
            if value.kind not in ("word", "phrase"):
                raise QuerySyntaxError(f"'{tok.text}:' needs a value after it", tok.pos)
            return self.primary(name, depth)
        if tok.kind in ("word", "phrase"):
            self.clauses += 1
            if self.clauses > MAX_CLAUSES:
                raise QuerySyntaxError(f"the query has more than {MAX_CLAUSES} terms", tok.pos)
            return _leaf(field, tok)
        if tok.kind == ")":
            raise QuerySyntaxError("')' without a matching '('", tok.pos)
        if tok.kind in ("AND", "OR"):
            raise QuerySyntaxError(f"'{tok.kind}' needs a term before it", tok.pos)
        raise QuerySyntaxError("the query ends too early", tok.pos)


def _bool(**clauses: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in clauses.items() if v}
    if "should" in body:
        body["minimum_should_match"] = 1
    return {"bool": body}


def _resolve_field(name: str, pos: int) -> str:
    for candidate in (name, name.lower()):
        candidate = FIELD_ALIASES.get(candidate, candidate)
        if candidate in TEXT_FIELDS or candidate in KEYWORD_FIELDS or candidate in NUMERIC_FIELDS or candidate in IP_FIELDS:
            return candidate
    if _DYNAMIC_NAME.fullmatch(name):
        return name
    close = difflib.get_close_matches(name.lower(), _ALL_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise QuerySyntaxError(
        f"unknown field '{name}'{hint}; fields: {', '.join(_COMMON)}, other ECS keyword fields, app.*, labels.*"
        " (to search for text with a ':', put it in quotes)",
        pos,
    )


# --------------------------------------------------------------------------- leaves


def _unescape(raw: str) -> tuple[str, str, bool, bool]:
    """(literal text, wildcard pattern, has wildcards, starts with a wildcard) of a word."""
    literal: list[str] = []
    pattern: list[str] = []
    wild = leading = False
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            i += 1
            c = raw[i]
            literal.append(c)
            pattern.append("\\" + c if c in "*?\\" else c)
        elif c in "*?":
            wild = True
            leading = leading or i == 0
            pattern.append(c)
        else:
            literal.append(c)
            pattern.append(c)
        i += 1
    return "".join(literal), "".join(pattern), wild, leading


def _leaf(field: str | None, tok: _Tok) -> dict[str, Any]:
    if tok.kind == "phrase":
        if not tok.text.strip():
            raise QuerySyntaxError("empty phrase", tok.pos)
        literal, pattern, wild, leading = tok.text, "", False, False
    else:
        if tok.text == "*":
            return {"match_all": {}} if field is None else {"exists": {"field": field}}
        literal, pattern, wild, leading = _unescape(tok.text)
    name = field or DEFAULT_FIELD
    prefix_only = wild and pattern.endswith("*") and not _has_wildcard(pattern[:-1])
    stem = pattern[:-1].replace("\\", "") if prefix_only else ""
    # A trailing escaped backslash case ("\\\\*") is rare; treat any escape as needing a wildcard query.
    if prefix_only and "\\" in pattern[:-1]:
        prefix_only = False

    if name in TEXT_FIELDS:
        if not wild:
            kind = "match_phrase" if tok.kind == "phrase" else "match"
            body: dict[str, Any] = {"query": literal} if kind == "match_phrase" else {"query": literal, "operator": "and"}
            return {kind: {name: body}}
        if leading:
            raise QuerySyntaxError("a text search cannot start with * or ? (it would scan every word); put letters first", tok.pos)
        if prefix_only:
            return {"prefix": {name: {"value": stem.lower()}}}
        return {"wildcard": {name: {"value": pattern.lower()}}}

    if name in NUMERIC_FIELDS:
        if wild:
            raise QuerySyntaxError(f"'{name}' is a number: wildcards do not apply", tok.pos)
        cmp = _COMPARISON.fullmatch(literal)
        if cmp:
            op = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[cmp.group(1)]
            return {"range": {name: {op: _num(cmp.group(2))}}}
        if not _NUMBER.fullmatch(literal):
            raise QuerySyntaxError(f"'{name}' takes a number (or >N, >=N, <N, <=N)", tok.pos)
        return {"term": {name: _num(literal)}}

    if name in IP_FIELDS:
        if wild:
            raise QuerySyntaxError(f"'{name}' is an IP address: use an address or a CIDR range, not wildcards", tok.pos)
        try:
            value = str(ipaddress.ip_address(literal)) if "/" not in literal else str(ipaddress.ip_network(literal, strict=False))
        except ValueError:
            raise QuerySyntaxError(f"'{name}' takes an IP address or a CIDR range", tok.pos) from None
        return {"term": {name: value}}

    # keyword fields (mapped or dynamic)
    if name == "log.level":
        literal, pattern, stem = literal.upper(), pattern.upper(), stem.upper()
        literal = _LEVEL_ALIASES.get(literal, literal)
    if len(literal) > 1024:
        raise QuerySyntaxError("the value is longer than 1024 characters", tok.pos)
    if not wild:
        return {"term": {name: literal}}
    if prefix_only:
        return {"prefix": {name: {"value": stem}}}
    return {"wildcard": {name: {"value": pattern}}}


def _has_wildcard(pattern: str) -> bool:
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] in "*?":
            return True
        i += 1
    return False


def _num(text: str) -> int | float:
    return float(text) if "." in text else int(text)


# --------------------------------------------------------------------------- entry point


def parse_query(text: str) -> dict[str, Any]:
    """OpenSearch query DSL for the search-box ``text``; :class:`QuerySyntaxError` if it is not a query."""
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"the query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    return _Parser(text).parse()
