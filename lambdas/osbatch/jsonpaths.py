"""JSONPath compilation, once per expression: parsing dominates the cost of evaluating a path."""

from __future__ import annotations

from functools import lru_cache

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse


@lru_cache(maxsize=1024)
def compile_path(expression: str) -> JSONPath:
    if not expression.startswith("$"):
        raise ValueError(f"'{expression}' is not a JSONPath (it must start with '$')")
    try:
        return parse(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as error:
        raise ValueError(f"'{expression}' is not a valid JSONPath: {error}") from None
