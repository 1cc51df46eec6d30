"""GX row conditions compiled to polars filters, for the subset whose pandas meaning is exact.

GX 1.x filters a pandas frame before computing any metric: a `pandas` condition goes to
`DataFrame.query` as written; a `great_expectations` one (`col("x") > 5`, `col("x").notnull()`)
is turned into the same kind of query. In pandas a missing value (null or NaN) compares false,
except under `!=` and `not in`, where it compares true. Only comparisons of a column with a
literal of its own kind, combined with and/or/not, are compiled; anything else raises
`Unsupported` and the expectation goes to GX.
"""

from __future__ import annotations

import ast
import keyword
import re
from typing import Any

import polars as pl

PANDAS = "pandas"
GX_PARSERS = ("great_expectations", "great_expectations__experimental__")


class Unsupported(Exception):
    """This expectation (with these arguments, on this column type) is left to GX."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_COMPARE = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}


def _literal_kind(value: Any) -> str | None:
    if is_number(value):
        return "numeric"
    if isinstance(value, str):
        return "string"
    return None


def _comparison(frame: pl.DataFrame, column: str, op: str, literals: list[Any]) -> pl.Expr:
    """`column op literal` as pandas evaluates it, missing values included only by != / not in."""
    if column not in frame.columns:
        raise Unsupported("row_condition names no column of the frame")  # pandas raises; GX reports it
    dtype = frame.schema[column]
    kinds = {_literal_kind(v) for v in literals}
    value = pl.col(column)
    if dtype.is_numeric() and kinds == {"numeric"}:
        if dtype in (pl.Float32, pl.Float64):
            value = value.fill_nan(None)
        if not dtype.is_integer() or any(isinstance(v, float) for v in literals) or frame[column].null_count():
            # pandas holds an integer column with nulls, or compares it with a float, as float64
            value, literals, members_dtype = value.cast(pl.Float64), [float(v) for v in literals], pl.Float64
        else:
            members_dtype = pl.Int64
    elif dtype == pl.String and kinds == {"string"}:
        members_dtype = pl.String
    else:
        raise Unsupported("row_condition compares a column with a literal of another kind")
    missing_passes = op in ("!=", "not in")
    if op in ("in", "not in"):
        test = value.is_in(pl.Series(literals, dtype=members_dtype))
        test = ~test if op == "not in" else test
    else:
        (literal,) = literals
        test = {
            "==": value == literal,
            "!=": value != literal,
            "<": value < literal,
            "<=": value <= literal,
            ">": value > literal,
            ">=": value >= literal,
        }[op]
    return test.fill_null(missing_passes)


def _constant(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and _literal_kind(node.value):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        number = node.operand.value
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return -number
    raise Unsupported("row_condition literal")


def _pandas_node(frame: pl.DataFrame, node: ast.AST) -> pl.Expr:
    if isinstance(node, ast.BoolOp):
        parts = [_pandas_node(frame, v) for v in node.values]
        return pl.all_horizontal(parts) if isinstance(node.op, ast.And) else pl.any_horizontal(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        left, right = _pandas_node(frame, node.left), _pandas_node(frame, node.right)
        return left & right if isinstance(node.op, ast.BitAnd) else left | right
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        return ~_pandas_node(frame, node.operand)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name):
        op, right = node.ops[0], node.comparators[0]
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple)) and right.elts:
            literals = [_constant(v) for v in right.elts]
            return _comparison(frame, node.left.id, "in" if isinstance(op, ast.In) else "not in", literals)
        if type(op) in _COMPARE:
            return _comparison(frame, node.left.id, _COMPARE[type(op)], [_constant(right)])
    raise Unsupported("row_condition form")


# GX's legacy grammar: col("name") <op> <number | quoted string>, or col("name").notnull().
# Only names that pandas reads unquoted, and strings of plain characters, are compiled.
_GX_COMPARISON = re.compile(
    r"""\s*col\("(?P<column>[A-Za-z_][A-Za-z0-9_]*)"\)\s*(?P<op>==|!=|<=|>=|<|>)\s*"""
    r"""(?:(?P<number>[+-]?\d+(?:\.\d+)?)|"(?P<dq>[A-Za-z0-9_.:/-][A-Za-z0-9 _.:/-]*)"|'(?P<sq>[A-Za-z0-9_.:/-][A-Za-z0-9 _.:/-]*)')"""
    r"""\s*"""
)
_GX_NOT_NULL = re.compile(r"""\s*col\("(?P<column>[A-Za-z_][A-Za-z0-9_]*)"\)\.notnull\(\)\s*""", re.IGNORECASE)


def _gx_condition(frame: pl.DataFrame, text: str) -> pl.Expr:
    if match := _GX_NOT_NULL.fullmatch(text):
        column = match["column"]
        if keyword.iskeyword(column) or column not in frame.columns:
            raise Unsupported("row_condition column")
        missing = pl.col(column).is_null()
        if frame.schema[column] in (pl.Float32, pl.Float64):
            missing = missing | pl.col(column).is_nan()
        return ~missing
    match = _GX_COMPARISON.fullmatch(text)
    if not match or keyword.iskeyword(match["column"]):
        raise Unsupported("row_condition form")
    if match["number"] is not None:
        number = match["number"]
        literal: Any = float(number) if "." in number else int(number)
    else:
        literal = match["dq"] if match["dq"] is not None else match["sq"]
    return _comparison(frame, match["column"], match["op"], [literal])


def row_filter(frame: pl.DataFrame, kwargs: dict[str, Any]) -> pl.Expr | None:
    """The rows an expectation is about (None: all of them), or Unsupported."""
    condition, parser = kwargs.get("row_condition"), kwargs.get("condition_parser")
    if condition is None and parser is None:
        return None
    if not isinstance(condition, str) or not condition.strip():
        raise Unsupported("row_condition")  # absent, empty or an object: GX decides
    if parser == PANDAS:
        try:
            tree = ast.parse(condition.strip(), mode="eval")
        except SyntaxError:
            raise Unsupported("row_condition syntax") from None
        return _pandas_node(frame, tree.body)
    if parser in GX_PARSERS:
        return _gx_condition(frame, condition)
    raise Unsupported("condition_parser")
