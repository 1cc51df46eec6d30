"""dbt's partial parse is kept per step and vars under the factory home and handed to the next
invocation with the same ones (dbt itself decides whether it still applies)."""

from __future__ import annotations

from pathlib import Path

from factory_dagster.products.dbt_model import PARTIAL_PARSE, partial_parsing
from factory_dagster.storage.home import FactoryHome


def test_the_next_invocation_with_the_same_vars_gets_the_last_parse(tmp_path: Path) -> None:
    home = FactoryHome(tmp_path / "home")
    first, second, other = (tmp_path / name for name in ("run1", "run2", "run3"))
    with partial_parsing(home, first, "flights_dbt_daily_models", '{"min_date": "2013-01-01"}'):
        first.mkdir()
        (first / PARTIAL_PARSE).write_bytes(b"parsed once")  # what dbt writes
    with partial_parsing(home, second, "flights_dbt_daily_models", '{"min_date": "2013-01-01"}'):
        assert (second / PARTIAL_PARSE).read_bytes() == b"parsed once"
        (second / PARTIAL_PARSE).write_bytes(b"parsed twice")
    with partial_parsing(home, other, "flights_dbt_daily_models", '{"min_date": "2013-02-01"}'):
        assert not (other / PARTIAL_PARSE).exists()  # other vars: dbt parses in full
    with partial_parsing(home, tmp_path / "run4", "flights_dbt_daily_models", '{"min_date": "2013-01-01"}'):
        assert (tmp_path / "run4" / PARTIAL_PARSE).read_bytes() == b"parsed twice"
