"""Suite parameters (`{"$PARAMETER": "start - timedelta(days=1)"}`) as GX 1.x evaluates them.

GX returns a lone parameter name's value as given. Any other expression it evaluates with its
own grammar: each parameter is written as text and read back (an int, a float or a date-time),
the functions `now()`, `datetime(...)` and `timedelta(...)` are Python's, and the result is made
JSON-serializable (a date-time becomes its ISO text). The fast engine evaluates only the forms
whose meaning is the same in that grammar and in Python; GX evaluates everything else.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import re
from collections.abc import Mapping
from typing import Any

from factory_dagster.gates.engines.conditions import Unsupported, is_number

PARAMETER = "$PARAMETER"
# Functions and constants of GX's grammar: names that are not parameters.
GX_FUNCTIONS = ("sin", "cos", "tan", "exp", "abs", "trunc", "round", "sgn", "now", "datetime", "timedelta")
GX_CONSTANTS = ("pi", "e")

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
# Plain names, unsigned decimals, + - * / ( ) , = and spaces read the same in both grammars.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PLAIN = re.compile(r"(?:[A-Za-z][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/(),=]|\s)+")


def is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and PARAMETER in value


def parameter_names(expression: Any) -> list[str]:
    """The parameters an expression reads (GX's functions and constants are not parameters)."""
    text = str(expression)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return [text]
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return [
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and id(n) not in called and n.id.lower() not in GX_CONSTANTS
    ]


def _as_text_and_back(value: Any) -> Any:
    """A parameter inside an expression, as GX reads back `str(value)`."""
    if is_number(value):
        return value
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        return value if offset is None else value.replace(tzinfo=dt.timezone(offset))
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    raise Unsupported("parameter of a type GX reads back differently")


def _call(node: ast.Call, parameters: Mapping[str, Any]) -> Any:
    if not isinstance(node.func, ast.Name) or node.func.id not in ("now", "datetime", "timedelta"):
        raise Unsupported("parameter function")
    if node.args and node.keywords:
        raise Unsupported("GX takes positional or keyword arguments, not both")
    if any(k.arg in parameters for k in node.keywords):
        raise Unsupported("GX substitutes a parameter for an argument name too")
    args = [_evaluate(a, parameters) for a in node.args]
    kwargs = {k.arg: _evaluate(k.value, parameters) for k in node.keywords if k.arg}
    function = {"now": dt.datetime.now, "datetime": dt.datetime, "timedelta": dt.timedelta}[node.func.id]
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError, OverflowError):
        raise Unsupported("parameter function arguments") from None


def _evaluate(node: ast.AST, parameters: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id not in parameters or node.id.lower() in GX_CONSTANTS:
            raise Unsupported(f"suite parameter {node.id!r} not provided")
        return _as_text_and_back(parameters[node.id])
    if isinstance(node, ast.Constant) and is_number(node.value):
        return node.value
    if isinstance(node, ast.Call):
        return _call(node, parameters)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        try:
            return _ARITHMETIC[type(node.op)](_evaluate(node.left, parameters), _evaluate(node.right, parameters))
        except (TypeError, ZeroDivisionError, OverflowError):
            raise Unsupported("parameter arithmetic") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        try:
            return -_evaluate(node.operand, parameters)
        except TypeError:
            raise Unsupported("parameter arithmetic") from None
    raise Unsupported("parameter expression")


def resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    """An argument with its suite parameter evaluated, or Unsupported (GX will say why)."""
    if not (isinstance(value, dict) and set(value) == {PARAMETER}):
        return value
    expression = value[PARAMETER]
    if not isinstance(expression, str):
        raise Unsupported("parameter expression")
    text = expression.strip()
    if _NAME.fullmatch(text) and text.lower() not in GX_CONSTANTS:
        if text not in parameters:
            raise Unsupported(f"suite parameter {text!r} not provided")
        return parameters[text]  # a lone name: its value as given
    if not _PLAIN.fullmatch(text) or text.startswith("("):
        raise Unsupported("parameter expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise Unsupported("parameter expression") from None
    if not isinstance(tree.body, (ast.BinOp, ast.Call)):
        raise Unsupported("parameter expression")  # GX reads a lone (signed) number as a missing name
    result = _evaluate(tree.body, parameters)
    if isinstance(result, dt.datetime):
        return result.isoformat()
    if is_number(result) and result == result:
        return result
    raise Unsupported("parameter result GX serializes differently")
