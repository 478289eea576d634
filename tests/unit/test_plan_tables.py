"""The price and throughput tables a plan rests on: every figure dated and sourced, overridable."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from osbatch.planning.tables import TableError, load_prices, load_rates


def test_every_shipped_figure_has_a_date_and_a_source() -> None:
    # Given the package's own tables / When they are loaded (an undated entry would raise)
    tables = [load_prices(), load_rates()]
    # Then every entry has a date and a source, and each backend osbatch runs has prices and rates
    entries = [entry for table in tables for section in table.values() for entry in section.values()]
    assert entries and all(entry.date and entry.source for entry in entries)
    assert {"sagemaker", "bedrock", "openai"} <= set(tables[0])
    assert {"sagemaker", "bedrock", "openai", "ingest"} <= set(tables[1])


def test_a_price_without_a_date_is_refused_with_the_entry_named(tmp_path: Path) -> None:
    # Given an override that prices a model without saying when the price was read
    override = tmp_path / "prices.yaml"
    override.write_text("openai:\n  my-model: {usd: 0.1, per: million_tokens, source: https://example.com}\n")
    # When it is loaded / Then it is refused, naming the file, the entry and the fix
    with pytest.raises(TableError, match=r"prices\.yaml: openai\.my-model has no date.*date: YYYY-MM-DD"):
        load_prices(override)


def test_an_override_replaces_the_shipped_entry_and_adds_new_ones(tmp_path: Path) -> None:
    # Given an override of one instance price and a new model
    override = tmp_path / "prices.yaml"
    override.write_text(
        "sagemaker:\n"
        "  ml.m5.xlarge: {usd: 0.5, per: instance_hour, vcpus: 4, date: 2027-01-01, source: my contract}\n"
        "openai:\n"
        "  my-model: {usd: 0.1, per: million_tokens, date: 2027-01-02, source: https://example.com}\n"
    )
    # When the tables are loaded with it
    prices = load_prices(override)
    # Then its entries win, with their own dates, and the others stay
    assert prices["sagemaker"]["ml.m5.xlarge"].usd == 0.5
    assert prices["sagemaker"]["ml.m5.xlarge"].date == datetime.date(2027, 1, 1)
    assert prices["openai"]["my-model"].source == "https://example.com"
    assert prices["sagemaker"]["ml.m5.large"] == load_prices()["sagemaker"]["ml.m5.large"]


def test_a_malformed_entry_says_what_is_wrong(tmp_path: Path) -> None:
    # Given a throughput entry with a negative rate and an unknown kind
    override = tmp_path / "rates.yaml"
    override.write_text(
        "ingest:\n  docs_per_second: {value: -1, kind: guess, date: 2027-01-01, source: me}\n"
    )
    # When it is loaded / Then the error names the entry and each field at fault
    with pytest.raises(TableError, match=r"ingest\.docs_per_second: value: .*greater than 0.*kind:"):
        load_rates(override)


def test_a_missing_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"nope\.yaml: no such file"):
        load_prices(tmp_path / "nope.yaml")
