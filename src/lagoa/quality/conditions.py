"""``row_condition`` in every form a Great Expectations suite writes it, translated to DuckDB SQL.

Three forms: the 1.x condition objects (``{"type": "comparison" | "nullity" | "and" | "or" |
"pass_through", ...}``), the legacy ``great_expectations`` string (``col("a") > 5``,
``col("a").notNull()``), and pandas ``DataFrame.query`` strings (``a > 5 and b == "x"``). Null
semantics follow pandas: a comparison with a null is false, except ``!=`` and ``not in``, which
keep the null rows.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from lagoa.core.errors import ConditionError
from lagoa.core.sql import quote_identifier, quote_literal

OPERATORS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
LEGACY = re.compile(
    r"""^\s*col\("(?P<column>[^"]+)"\)\s*(?:(?P<notnull>\.notnull\(\))|(?P<op>==|!=|>=|<=|>|<)\s*"""
    r"""(?P<value>[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|"[^"]*"|'[^']*'|date\("[^"]*"\)))\s*$""",
    re.IGNORECASE,
)


def condition_sql(condition: Any, parser: str | None = None) -> str:
    """SQL boolean selecting the rows a ``row_condition`` keeps."""
    if isinstance(condition, dict):
        return _object(condition)
    if not isinstance(condition, str):
        raise ConditionError("row_condition must be a string or a condition object")
    if parser in ("great_expectations", "great_expectations__experimental__"):
        return _legacy(condition)
    return _pandas(condition)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote_literal(value)
    raise ConditionError(f"cannot compare with {value!r}")


def _compare(column: str, op: str, value: Any) -> str:
    name = quote_identifier(column)
    if op in ("IN", "NOT_IN"):
        if not isinstance(value, list | tuple) or not value:
            raise ConditionError(f"{op} needs a non-empty list")
        items = ", ".join(_literal(v) for v in value)
        return f"{name} IN ({items})" if op == "IN" else f"({name} NOT IN ({items}) OR {name} IS NULL)"
    if op not in OPERATORS:
        raise ConditionError(f"unknown operator {op!r}")
    if value is None:
        raise ConditionError("compare with null using a nullity condition (is_null)")
    sql = f"{name} {OPERATORS[op]} {_literal(value)}"
    return f"({sql} OR {name} IS NULL)" if op == "!=" else sql


def _compare_columns(left: str, op: str, right: str) -> str:
    a, b = quote_identifier(left), quote_identifier(right)
    sql = f"{a} {OPERATORS[op]} {b}"
    return f"({sql} OR {a} IS NULL OR {b} IS NULL)" if op == "!=" else sql


def _object(condition: dict[str, Any]) -> str:
    kind = condition.get("type")
    if kind == "comparison":
        return _compare(_column_name(condition), str(condition.get("operator")), condition.get("parameter"))
    if kind == "nullity":
        test = "IS NULL" if condition.get("is_null") else "IS NOT NULL"
        return f"{quote_identifier(_column_name(condition))} {test}"
    if kind in ("and", "or"):
        parts = [_object(c) for c in condition.get("conditions") or []]
        if not parts:
            raise ConditionError(f"an `{kind}` condition needs conditions")
        return "(" + f" {kind.upper()} ".join(parts) + ")"
    if kind == "pass_through":
        return _pandas(str(condition.get("pass_through_filter", "")))
    raise ConditionError(f"unknown condition type {kind!r}")


def _column_name(condition: dict[str, Any]) -> str:
    column = condition.get("column")
    name = column.get("name") if isinstance(column, dict) else column
    if not isinstance(name, str):
        raise ConditionError("a condition needs a column name")
    return name


def _legacy(text: str) -> str:
    """``col("a") > 5`` or ``col("a").notNull()``: one condition, as Great Expectations' parser.
    Great Expectations ignores anything after the first condition; Lagoa refuses it instead."""
    match = LEGACY.match(text)
    if match is None:
        raise ConditionError(
            f'cannot parse {text!r}: write one condition such as col("a") > 5 or col("a").notNull(); '
            'for and/or use a condition object or condition_parser "pandas"'
        )
    column = match["column"]
    if match["notnull"]:
        return f"{quote_identifier(column)} IS NOT NULL"
    raw = match["value"]
    value: Any
    if raw[0] in "\"'":
        value = raw[1:-1]
    elif raw.lower().startswith("date("):
        value = raw[6:-2]
    else:
        value = int(raw) if re.fullmatch(r"[+-]?\d+", raw) else float(raw)
    return _compare(column, match["op"], value)


def _pandas(text: str) -> str:
    """A ``DataFrame.query`` expression: comparisons, and/or/not (also & | ~), ``in`` lists and
    ``.isnull()``/``.notnull()``; backticks quote names that are not identifiers."""
    names: dict[str, str] = {}

    def unquote(match: re.Match[str]) -> str:
        placeholder = f"_lagoa_name_{len(names)}"
        names[placeholder] = match.group(1)
        return placeholder

    source = re.sub(r"`([^`]+)`", unquote, text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"cannot parse {text!r}: {exc.msg}") from None
    return _PandasTranslator(names, text).visit(tree.body)


class _PandasTranslator:
    def __init__(self, names: dict[str, str], text: str) -> None:
        self.names = names
        self.text = text

    def fail(self, what: str) -> ConditionError:
        return ConditionError(f"cannot translate {self.text!r}: {what}")

    def visit(self, node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + joiner.join(self.visit(v) for v in node.values) + ")"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
            joiner = " AND " if isinstance(node.op, ast.BitAnd) else " OR "
            return f"({self.visit(node.left)}{joiner}{self.visit(node.right)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
            # In pandas a comparison with a null is false, not unknown, so its negation keeps the row.
            return f"(NOT coalesce({self.visit(node.operand)}, false))"
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):  # a boolean column
            return f"({quote_identifier(self.name(node))} IS TRUE)"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
            column = quote_identifier(self.name(node.func.value))
            method = node.func.attr.lower()
            if method in ("isnull", "isna"):
                return f"{column} IS NULL"
            if method in ("notnull", "notna"):
                return f"{column} IS NOT NULL"
        raise self.fail(f"unsupported expression `{ast.unparse(node)}`")

    def name(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.names.get(node.id, node.id)
        raise self.fail(f"`{ast.unparse(node)}` is not a column name")

    def value(self, node: ast.AST) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError:
            raise self.fail(f"`{ast.unparse(node)}` is not a literal value") from None

    def compare(self, node: ast.Compare) -> str:
        symbols = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                parts.append(
                    _compare(self.name(left), "IN" if isinstance(op, ast.In) else "NOT_IN", self.value(right))
                )
            elif type(op) in symbols:
                symbol = symbols[type(op)]
                if isinstance(left, ast.Name) and isinstance(right, ast.Name):
                    parts.append(_compare_columns(self.name(left), symbol, self.name(right)))
                elif isinstance(left, ast.Name):
                    parts.append(_compare(self.name(left), symbol, self.value(right)))
                elif isinstance(right, ast.Name):  # 5 < a  →  a > 5
                    flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(symbol, symbol)
                    parts.append(_compare(self.name(right), flipped, self.value(left)))
                else:
                    raise self.fail("each comparison needs a column on one side")
            else:
                raise self.fail(f"unsupported operator in `{ast.unparse(node)}`")
            left = right
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
