"""InputFilter / OutputFilter: SageMaker's JSONPath subset, giving one JSON value shaped as SageMaker does."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulators.jsonpath_filter import JsonPathError, JsonPathFilter, JsonPathMiss

RECORD = {"_id": "1", "text": "hello", "meta": {"lang": "en"}, "tags": ["a", "b", "c", "d"]}


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("$", RECORD, RECORD),
        ("$.text", RECORD, "hello"),
        ("$['text']", RECORD, "hello"),
        ("$.meta.lang", RECORD, "en"),
        ("$['_id','text']", RECORD, {"_id": "1", "text": "hello"}),
        ('$["_id", "text"]', RECORD, {"_id": "1", "text": "hello"}),
        ("$.tags[1]", RECORD, "b"),
        ("$.tags[-1]", RECORD, "d"),
        ("$.tags[1:]", RECORD, ["b", "c", "d"]),
        ("$.tags[0,2:]", RECORD, ["a", "c", "d"]),
        ("$[1:]", [1, 2, 3], [2, 3]),
        ("$.meta.*", RECORD, ["en"]),
        ("$[*]", [1, 2], [1, 2]),
    ],
)
def test_supported_expressions_select_sagemaker_shaped_values(
    expression: str, value: Any, expected: Any
) -> None:
    # Given / When the filter is applied / Then it returns the one value SageMaker would pass on
    assert JsonPathFilter(expression).select(value) == expected


@pytest.mark.parametrize(
    ("expression", "value"),
    [("$.text", "a bare string"), ("$.missing", RECORD), ("$.tags[9]", RECORD), ("$['_id','nope']", RECORD)],
)
def test_a_path_that_selects_nothing_is_a_miss(expression: str, value: Any) -> None:
    # Given / When / Then selecting outside the record is an error, as SageMaker reports it
    with pytest.raises(JsonPathMiss):
        JsonPathFilter(expression).select(value)


@pytest.mark.parametrize("expression", ["text", "$..text", "$[?(@.a)]", "$.tags[*].x", "$['a','b'].c"])
def test_expressions_outside_the_subset_are_refused_up_front(expression: str) -> None:
    # Given / When / Then an unsupported expression fails when the filter is built, not per record
    with pytest.raises(JsonPathError):
        JsonPathFilter(expression)


def test_dollar_is_the_identity() -> None:
    # Given / When / Then "$" is recognised as "the whole record"
    assert JsonPathFilter("$").is_identity
    assert not JsonPathFilter("$.text").is_identity
