"""A small evaluator of Go's text/template, for the subset that Ollama TEMPLATEs use and that
`dyag_core.export.template` emits: what Ollama would render, computed without Ollama.

Supported, with Go's semantics:
- text, and actions `{{ … }}` with the trim markers `{{-` / `-}}` (they trim all adjacent white space);
- `{{ range $i, $m := PIPE }}` / `{{ range $m := PIPE }}` / `{{ range PIPE }}` … `{{ else }}` … `{{ end }}`
  (the dot becomes the element);
- `{{ if PIPE }}` … `{{ else if PIPE }}` … `{{ else }}` … `{{ end }}`;
- `{{ $x := PIPE }}` and `{{ $x = PIPE }}` (variables are scoped to their block);
- output of a pipeline: a field (`.Content`, `$m.Role`, `$.Messages`), a variable, a string or number literal;
- the functions and, or (both return the deciding argument and stop early, as Go does since 1.18), not,
  eq (with several right-hand values), ne, lt, le, gt, ge, len, index, slice;
- comments `{{/* … */}}`.
Truth is Go's: false, 0, "", nil and empty lists or maps are false. Anything else raises GoTemplateError:
the evaluator never guesses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class GoTemplateError(ValueError):
    pass


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<number>-?\d+)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<declare>:=)
      | (?P<assign>=)
      | (?P<comma>,)
      | (?P<pipe>\|)
      | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


# ---------------------------------------------------------------- parsing


@dataclass
class _Node:
    kind: str  # text | output | assign | if | range | comment
    text: str = ""
    expr: list = field(default_factory=list)
    var: str = ""
    declare: bool = True
    branches: list = field(default_factory=list)  # if: [(cond tokens | None, body)]
    body: list = field(default_factory=list)
    else_body: list = field(default_factory=list)
    index_var: str = ""
    elem_var: str = ""


def _tokens(source: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise GoTemplateError(f"cannot read {source[pos:]!r} in the action {source!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(source) and source[pos].isspace():
            pos += 1
    return out


def _lex(template: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)], with the trim markers applied to the text around them."""
    items: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        items.append(("text", text))
        items.append(("action", m.group(2).strip()))
        pos = m.end()
        if m.group(3):
            while pos < len(template) and template[pos] in " \t\r\n":
                pos += 1
    items.append(("text", template[pos:]))
    if "{{" in "".join(t for k, t in items if k == "text"):
        raise GoTemplateError("an action is not closed with }}")
    return [i for i in items if i != ("text", "")]


def parse(template: str) -> list[_Node]:
    items = _lex(template)
    pos = 0

    def block(stop: tuple[str, ...]) -> tuple[list[_Node], str]:
        nonlocal pos
        nodes: list[_Node] = []
        while pos < len(items):
            kind, value = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(_Node("text", text=value))
                continue
            if value.startswith("/*"):
                if not value.endswith("*/"):
                    raise GoTemplateError(f"unclosed comment {{{{{value}}}}}")
                continue
            word = value.split(None, 1)[0] if value else ""
            if word in ("end", "else") and word in stop:
                return nodes, value
            if word in ("end", "else"):
                raise GoTemplateError(f"unexpected {{{{{value}}}}}")
            if word == "if":
                nodes.append(parse_if(value[2:].strip()))
            elif word == "range":
                nodes.append(parse_range(value[5:].strip()))
            elif word in ("with", "define", "template", "block", "break", "continue"):
                raise GoTemplateError(f"{{{{{word}}}}} is outside the supported subset")
            else:
                tokens = _tokens(value)
                if len(tokens) >= 2 and tokens[0][0] == "var" and tokens[1][0] in ("declare", "assign"):
                    nodes.append(_Node("assign", var=tokens[0][1], declare=tokens[1][0] == "declare", expr=tokens[2:]))
                else:
                    nodes.append(_Node("output", expr=tokens))
        if stop:
            raise GoTemplateError("missing {{ end }}")
        return nodes, ""

    def parse_if(cond: str) -> _Node:
        node = _Node("if")
        current = _tokens(cond)
        while True:
            body, ended = block(("end", "else"))
            node.branches.append((current, body))
            if ended == "end":
                return node
            rest = ended[4:].strip()
            if rest.startswith("if "):
                current = _tokens(rest[3:])
            elif rest == "":
                body, ended = block(("end",))
                node.branches.append((None, body))
                return node
            else:
                raise GoTemplateError(f"unsupported {{{{{ended}}}}}")

    def parse_range(spec: str) -> _Node:
        node = _Node("range")
        tokens = _tokens(spec)
        if tokens and tokens[0][0] == "var":
            if len(tokens) >= 4 and tokens[1][0] == "comma" and tokens[2][0] == "var" and tokens[3][0] == "declare":
                node.index_var, node.elem_var, tokens = tokens[0][1], tokens[2][1], tokens[4:]
            elif len(tokens) >= 2 and tokens[1][0] == "declare":
                node.elem_var, tokens = tokens[0][1], tokens[2:]
        node.expr = tokens
        node.body, ended = block(("end", "else"))
        if ended.startswith("else"):
            node.else_body, _ = block(("end",))
        return node

    nodes, _ = block(())
    return nodes


# ---------------------------------------------------------------- evaluation


def truth(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, (str, Sequence, Mapping)):
        return len(value) > 0
    return True


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        lower = name[:1].lower() + name[1:]  # Ollama's Message{Role, Content} is JSON {"role", "content"}
        if lower in value:
            return value[lower]
        return None
    if hasattr(value, name):
        return getattr(value, name)
    raise GoTemplateError(f"can't evaluate field {name} in {type(value).__name__}")


def _go_text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Scope:
    def __init__(self, root: Any):
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise GoTemplateError(f"undefined variable {name}")

    def set(self, name: str, value: Any, declare: bool) -> None:
        if declare:
            self.frames[-1][name] = value
            return
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise GoTemplateError(f"undefined variable {name}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        raise GoTemplateError(f"incompatible types for comparison: {a!r} {op} {b!r}")
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


class _Evaluator:
    def __init__(self, root: Any):
        self.scope = _Scope(root)
        self.dot: Any = root

    def run(self, nodes: list[_Node], out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "output":
                out.append(_go_text(self.pipeline(node.expr)))
            elif node.kind == "assign":
                self.scope.set(node.var, self.pipeline(node.expr), node.declare)
            elif node.kind == "if":
                for cond, body in node.branches:
                    if cond is None or truth(self.pipeline(cond)):
                        self.scope.frames.append({})
                        try:
                            self.run(body, out)
                        finally:
                            self.scope.frames.pop()
                        break
            elif node.kind == "range":
                self.range(node, out)

    def range(self, node: _Node, out: list[str]) -> None:
        items = self.pipeline(node.expr)
        if items is None:
            items = []
        if isinstance(items, Mapping):
            pairs = sorted(items.items())
        elif isinstance(items, Sequence) and not isinstance(items, str):
            pairs = list(enumerate(items))
        elif isinstance(items, int):
            pairs = [(i, i) for i in range(items)]
        else:
            raise GoTemplateError(f"range can't iterate over {items!r}")
        if not pairs:
            self.run(node.else_body, out)
            return
        saved = self.dot
        try:
            for key, value in pairs:
                frame: dict[str, Any] = {}
                if node.index_var:
                    frame[node.index_var] = key
                if node.elem_var:
                    frame[node.elem_var] = value
                self.scope.frames.append(frame)
                self.dot = value
                try:
                    self.run(node.body, out)
                finally:
                    self.scope.frames.pop()
        finally:
            self.dot = saved

    # A pipeline: commands separated by |, the value of each passed as the last argument of the next.
    def pipeline(self, tokens: list[tuple[str, str]]) -> Any:
        commands: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for token in tokens:
            if token[0] == "lparen":
                depth += 1
            elif token[0] == "rparen":
                depth -= 1
            if token[0] == "pipe" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(token)
        value: Any = _NO_VALUE
        for command in commands:
            value = self.command(command, value)
        return value

    def command(self, tokens: list[tuple[str, str]], piped: Any) -> Any:
        args = self.operands(tokens)
        if not args:
            raise GoTemplateError("empty command")
        head_kind, head = args[0]
        if head_kind == "ident" and head not in ("true", "false", "nil"):
            rest = args[1:]
            if piped is not _NO_VALUE:
                rest = [*rest, ("value", piped)]
            return self.call(head, rest)
        if len(args) > 1 or piped is not _NO_VALUE:
            raise GoTemplateError("only a function takes arguments")
        return self.value(args[0])

    def operands(self, tokens: list[tuple[str, str]]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        i = 0
        while i < len(tokens):
            kind, text = tokens[i]
            if kind == "lparen":
                depth, j = 1, i + 1
                while depth:
                    if j >= len(tokens):
                        raise GoTemplateError("unclosed (")
                    depth += {"lparen": 1, "rparen": -1}.get(tokens[j][0], 0)
                    j += 1
                inner = tokens[i + 1 : j - 1]
                out.append(("group", inner))
                i = j
                # (pipeline).Field
                if i < len(tokens) and tokens[i][0] == "field" and tokens[i][1] != ".":
                    out[-1] = ("group_field", (inner, tokens[i][1]))
                    i += 1
                continue
            if kind == "rparen":
                raise GoTemplateError("unexpected )")
            out.append((kind, text))
            i += 1
        return out

    def value(self, operand: tuple[str, Any]) -> Any:
        kind, text = operand
        if kind == "value":
            return text
        if kind == "group":
            return self.pipeline(text)
        if kind == "group_field":
            inner, path = text
            value = self.pipeline(inner)
            for name in path.strip(".").split("."):
                value = _field(value, name)
            return value
        if kind == "string":
            if text.startswith("`"):
                return text[1:-1]
            try:
                return json.loads(text)  # Go's common escapes (\n, \t, \", \\, \uXXXX) read as JSON's
            except ValueError:
                raise GoTemplateError(f"unsupported string literal {text}") from None
        if kind == "number":
            return int(text)
        if kind == "var":
            name, _, path = text.partition(".")
            value = self.scope.get(name)
            for part in path.split(".") if path else []:
                value = _field(value, part)
            return value
        if kind == "field":
            value = self.dot
            for part in text.strip(".").split(".") if text != "." else []:
                value = _field(value, part)
            return value
        if kind == "ident":
            if text in ("true", "false"):
                return text == "true"
            if text == "nil":
                return None
            return self.call(text, [])
        raise GoTemplateError(f"unexpected {text!r}")

    def call(self, name: str, args: list[tuple[str, Any]]) -> Any:
        if name in ("and", "or"):
            if not args:
                raise GoTemplateError(f"{name} needs arguments")
            value: Any = None
            for arg in args:
                value = self.value(arg)
                if truth(value) != (name == "and"):
                    return value
            return value
        values = [self.value(a) for a in args]
        if name == "not":
            self._arity(name, values, 1)
            return not truth(values[0])
        if name == "eq":
            if len(values) < 2:
                raise GoTemplateError("eq needs at least two arguments")
            return any(values[0] == v for v in values[1:])
        if name == "ne":
            self._arity(name, values, 2)
            return values[0] != values[1]
        if name in ("lt", "le", "gt", "ge"):
            self._arity(name, values, 2)
            return _compare(name, values[0], values[1])
        if name == "len":
            self._arity(name, values, 1)
            if values[0] is None:
                raise GoTemplateError("len of nil")
            return len(values[0])
        if name == "index":
            value = values[0]
            for key in values[1:]:
                try:
                    value = value[key]
                except (IndexError, KeyError, TypeError):
                    raise GoTemplateError(f"index out of range: {key}") from None
            return value
        if name == "slice":
            if not 1 <= len(values) <= 3:
                raise GoTemplateError("slice takes one to three arguments")
            seq = values[0]
            start = values[1] if len(values) > 1 else 0
            end = values[2] if len(values) > 2 else len(seq)
            if not 0 <= start <= end <= len(seq):
                raise GoTemplateError(f"slice index out of range: [{start}:{end}] of {len(seq)}")
            return seq[start:end]
        raise GoTemplateError(f"function {name!r} is outside the supported subset")

    @staticmethod
    def _arity(name: str, values: list, n: int) -> None:
        if len(values) != n:
            raise GoTemplateError(f"{name} takes {n} argument(s), got {len(values)}")


_NO_VALUE = object()


def render(template: str | list[_Node], data: Any) -> str:
    """The text Go's text/template renders for `data` (a mapping such as {"Messages": [...], "System": ...})."""
    nodes = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    _Evaluator(data).run(nodes, out)
    return "".join(out)
