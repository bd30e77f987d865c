"""Row filters: a `pyarrow.compute.Expression`, or a small dict form for the common cases.

Dict form, one entry per column, all entries must hold (AND):

    {"language": "en"}                         equality
    {"language": ["en", "de"]}                 membership
    {"ppl_bucket": ["head", "middle"]}
    {"toxicity": {"max": 0.5}}                 inclusive bounds: min / max
    {"q_words": {">=": 50, "<": 100000}}       comparison operators: < <= > >= == !=
"""

from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa
import pyarrow.compute as pc

Filter = pc.Expression | Mapping[str, Any] | None

_OPS = {
    "min": lambda f, v: f >= v,
    "max": lambda f, v: f <= v,
    ">=": lambda f, v: f >= v,
    "<=": lambda f, v: f <= v,
    ">": lambda f, v: f > v,
    "<": lambda f, v: f < v,
    "==": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
}


def to_expression(flt: Filter) -> pc.Expression | None:
    """Normalise a filter to an Expression (None = keep every row)."""
    if flt is None or isinstance(flt, pc.Expression):
        return flt
    if not isinstance(flt, Mapping):
        raise TypeError(f"filter must be a pyarrow.compute.Expression or a dict, not {type(flt).__name__}")
    expr: pc.Expression | None = None
    for column, cond in flt.items():
        field = pc.field(column)
        if isinstance(cond, Mapping):
            if not cond:
                raise ValueError(f"filter on {column!r}: empty condition")
            parts = []
            for op, value in cond.items():
                if op not in _OPS:
                    raise ValueError(f"filter on {column!r}: unknown operator {op!r} (use {', '.join(_OPS)})")
                parts.append(_OPS[op](field, value))
            term = parts[0]
            for p in parts[1:]:
                term = term & p
        elif isinstance(cond, (list, tuple, set, frozenset)):
            term = field.isin(pa.array(sorted(cond) if isinstance(cond, (set, frozenset)) else list(cond)))
        else:
            term = field == cond
        expr = term if expr is None else expr & term
    return expr


def filter_columns(flt: Filter) -> list[str]:
    """Columns named by the dict form (an Expression is checked by Arrow when scanned)."""
    return list(flt) if isinstance(flt, Mapping) else []


def check_columns(names: list[str], schema: pa.Schema, what: str) -> None:
    missing = [n for n in names if n not in schema.names]
    if missing:
        raise KeyError(f"{what}: no column(s) {', '.join(missing)} in the corpus; it has: {', '.join(schema.names)}")
