"""Quantities and Brian expressions read from text without running any code.

Configuration files are data, so reading one must never execute it: Python's
``eval`` (even with empty builtins) is no sandbox. Quantities are therefore
read by a small parser of our own, which knows numbers, Brian's unit names and
four operators, and nothing else:

.. code-block:: text

    quantity := product
    product  := signed (("*" | "/") signed)*
    signed   := ("-" | "+") signed | power
    power    := atom ["**" exponent]
    exponent := ["-" | "+"] NUMBER | "(" ["-" | "+"] NUMBER ")"
    atom     := NUMBER | UNIT | "(" product ")"
    NUMBER   := 12 | 0.5 | .5 | 1. | 1e-3 | 2.5E+2     (decimal digits only)
    UNIT     := a Brian unit name: mV, nS, msiemens, ms, second, amp, pF, cm, um, Hz...

Precedence is Python's (``-2**2`` is -4, ``1/2*ms`` is 0.5 ms); the exponent
is a single number, so ``2**3**2`` is refused. The result must be finite.

Strings that Brian itself reads (initial values such as ``"v_rest + 2*mV"``,
refractoriness conditions such as ``"v > -40*mV"``) are checked by
:func:`check_brian_expression`: identifiers, numbers, arithmetic, comparisons,
``and``/``or``/``not`` and calls of Brian's functions (``rand()``, ``exp(x)``)
only. Brian translates such strings with its own code generator; the check
makes sure nothing else (attributes, subscripts, strings, lambdas...) gets
that far.
"""

from __future__ import annotations

import ast
import difflib
import re
from functools import lru_cache
from typing import Any

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError

MAX_LENGTH = 500
"""Longest text accepted; real quantities and initial values are a few characters."""
MAX_EXPONENT = 64
"""Largest exponent of ``**`` in a Brian expression (see ``_check_power``)."""
MAX_NESTING = 32
"""Deepest nesting of parentheses and signs, so no text can exhaust the stack."""

_TOKEN = re.compile(r"""
    (?P<space>[ \t]+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[*/()+-])
""", re.VERBOSE | re.ASCII)

_BRIAN_CHARACTERS = re.compile(r"[A-Za-z0-9_ \t+\-*/%().,<>=!]*", re.ASCII)
_BRIAN_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call,
                ast.Name, ast.Constant, ast.Load,
                ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
                ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
                ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


class QuantityError(ConfigurationError):
    """Text that is not an acceptable quantity or Brian expression (the reason why)."""


@lru_cache(maxsize=1)
def known_units() -> dict[str, Any]:
    """Every Brian unit by name (``mV``, ``nsiemens``, ``cm``...): Unit objects only."""
    import brian2.units
    from brian2.core.namespace import DEFAULT_UNITS
    from brian2.units import allunits
    from brian2.units.fundamentalunits import Unit
    units = {}
    for source in (vars(allunits), vars(brian2.units), DEFAULT_UNITS):
        units.update({name: value for name, value in source.items()
                      if isinstance(value, Unit) and not name.startswith("_")})
    return units


@lru_cache(maxsize=1)
def brian_functions() -> frozenset[str]:
    """Names of the functions Brian knows in every model (``rand``, ``exp``, ...)."""
    from brian2.core.functions import DEFAULT_FUNCTIONS
    return frozenset(DEFAULT_FUNCTIONS)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise QuantityError(f"unexpected character {text[position]!r} at position "
                                f"{position + 1}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group(), position + 1))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; values are computed as they are read."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, what: str, literal: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise QuantityError(f"the text ends where {what} is expected")
        if literal is not None and token[1] != literal:
            raise QuantityError(f"expected {what} at position {token[2]}, "
                                f"found {token[1]!r}")
        self.index += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] in texts

    def quantity(self):
        value = self.product(0)
        token = self.peek()
        if token is not None and token[1] == "**":
            raise QuantityError(f"a power cannot be raised again (position {token[2]}); "
                                f"the exponent is a single number")
        if token is not None:
            raise QuantityError(f"unexpected {token[1]!r} at position {token[2]} (only *, / "
                                f"and ** combine numbers and units)")
        return value

    def product(self, depth: int):
        value = self.signed(depth)
        while self.at("*", "/"):
            operator = self.take("an operator")[1]
            right = self.signed(depth)
            value = _apply(operator, value, right)
        return value

    def signed(self, depth: int):
        if depth > MAX_NESTING:
            raise QuantityError(f"nested deeper than {MAX_NESTING} levels")
        if self.at("-", "+"):
            sign = self.take("a sign")[1]
            value = self.signed(depth + 1)
            return -value if sign == "-" else +value
        return self.power(depth)

    def power(self, depth: int):
        value = self.atom(depth)
        if self.at("**"):
            self.take("'**'")
            value = _apply("**", value, self.exponent())
        return value

    def exponent(self):
        closing = self.at("(")
        if closing:
            self.take("'('")
        negative = self.at("-", "+") and self.take("a sign")[1] == "-"
        kind, text, position = self.take("a number (the exponent)")
        if kind != "number":
            raise QuantityError(f"the exponent at position {position} must be a number, "
                                f"found {text!r}")
        if closing:
            self.take("')'", ")")
        value = int(text) if text.isdigit() else _number(text)
        return -value if negative else value

    def atom(self, depth: int):
        kind, text, position = self.take("a number or a unit")
        if kind == "number":
            return _number(text)
        if kind == "name":
            return _unit(text)
        if text == "(":
            value = self.product(depth + 1)
            self.take("')'", ")")
            return value
        raise QuantityError(f"expected a number, a unit or '(' at position {position}, "
                            f"found {text!r}")


def _number(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise QuantityError(f"the number {text} is too large")
    return value


def _unit(name: str):
    units = known_units()
    if name in units:
        return units[name]
    # Powers (msecond2) and rare prefixes would crowd out the unit meant.
    plain = [unit for unit in units if not unit[-1].isdigit()]
    close = [unit for unit in plain if unit.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, plain, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise QuantityError(f"{name!r} is not a Brian unit{hint}")


def _apply(operator: str, left, right):
    # Every failure of the arithmetic itself (0 division, overflow, a complex
    # root) is the text's fault, so it becomes a QuantityError too.
    try:
        with np.errstate(all="ignore"):
            if operator == "*":
                return left * right
            if operator == "/":
                return left / right
            return left ** right
    except Exception as exc:
        raise QuantityError(f"cannot compute {operator!r}: {exc}") from exc


def parse_quantity(text: str):
    """Read ``"0.1*ms"``, ``"-70*mV"``, ``"2e-3"`` or ``"mV**-1"`` without evaluating code.

    Parameters
    ----------
    text : str
        A number times Brian units (grammar in this module's docstring).

    Returns
    -------
    float or brian2.Quantity
        A plain float when the text has no unit.

    Raises
    ------
    QuantityError
        If the text is anything else; the message says why.
    """
    if not isinstance(text, str):
        raise QuantityError(f"expected text such as \"0.1*ms\", got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise QuantityError(f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise QuantityError("empty text")
    value = _Parser(_tokens(text)).quantity()
    if isinstance(value, complex) or not np.all(np.isfinite(np.asarray(value))):
        raise QuantityError("the value is not a finite real number")
    return value


def check_brian_expression(text: str) -> str:
    """``text`` unchanged, if it is an expression Brian may read and nothing more.

    Allowed: identifiers (not starting with ``_``), numbers, ``True``/``False``,
    ``+ - * / // % **``, comparisons, ``and``/``or``/``not``, parentheses and
    calls of Brian's functions with positional arguments.

    Raises
    ------
    QuantityError
        For anything else (attributes, subscripts, strings, lambdas, keywords...).
    """
    if not isinstance(text, str):
        raise QuantityError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise QuantityError(f"longer than {MAX_LENGTH} characters")
    if not _BRIAN_CHARACTERS.fullmatch(text):
        bad = next(c for c in text if not _BRIAN_CHARACTERS.fullmatch(c))
        raise QuantityError(f"the character {bad!r} has no place in a Brian expression")
    if "__" in text:
        raise QuantityError("names with '__' are not Brian identifiers")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except Exception as exc:  # SyntaxError, or the parser's own limits
        raise QuantityError(f"not a valid expression ({type(exc).__name__}: "
                            f"{getattr(exc, 'msg', exc)})") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _BRIAN_NODES):
            raise QuantityError(f"{type(node).__name__} ({_snippet(text, node)}) is not "
                                f"allowed in a Brian expression")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise QuantityError(f"the constant {node.value!r} is not a number")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise QuantityError(f"the name {node.id!r} starts with '_'")
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in brian_functions():
                raise QuantityError(f"only Brian's functions can be called "
                                    f"({', '.join(sorted(brian_functions()))}), not "
                                    f"{_snippet(text, node.func)}")
            if node.keywords:
                raise QuantityError(f"{name}() takes no keyword arguments here")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_power(text, node)
    return text


def _check_power(text: str, node: ast.BinOp) -> None:
    # Brian hands constants to sympy, which computes integer powers exactly:
    # 9**9**9**9 would never finish. A small exponent over a base without
    # powers keeps every constant a few thousand digits long at most.
    exponent = node.right
    if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.USub, ast.UAdd)):
        exponent = exponent.operand
    small = isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float)) \
        and abs(exponent.value) <= MAX_EXPONENT
    if not (small or isinstance(exponent, ast.Name)):
        raise QuantityError(f"the exponent in {_snippet(text, node)} must be a name or a "
                            f"number between -{MAX_EXPONENT} and {MAX_EXPONENT}")
    if any(isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Pow)
           for inner in ast.walk(node.left)):
        raise QuantityError(f"a power cannot be raised again ({_snippet(text, node)})")


def _snippet(text: str, node: ast.AST) -> str:
    segment = ast.get_source_segment(text.strip(), node) or type(node).__name__
    return segment if len(segment) <= 40 else segment[:37] + "..."
