"""One-line reasons for failed steps, as `factory build` prints them."""

from __future__ import annotations

from factory_dagster.execution.report import dbt_reason

DBT_SCHEMA_CHANGE = """dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command

`dbt build --vars {"min_date": "2013-01-01", "max_date": "2013-12-31"} --select factory.flights.intermediate.int_flights_enriched`

failed with exit code `1`. Check the stdout in the Dagster compute logs for the full information about the error.

Errors parsed from dbt logs:

1 of 4 ERROR creating sql incremental model main.int_flights_enriched .......... [\x1b[31mERROR\x1b[0m in 1.59s]

\x1b[31mFailure in model int_flights_enriched (models/flights/intermediate/int_flights_enriched.sql)\x1b[0m

  Compilation Error in model int_flights_enriched (models/flights/intermediate/int_flights_enriched.sql)

                The source and target schemas on this incremental model are out of sync!
                They can be reconciled in several ways:
"""

DBT_TEST_FAILURE = """dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command

`dbt build`

failed with exit code `1`.

Errors parsed from dbt logs:

Failure in test unique_fct_flights_flight_id (models/flights/marts/_models.yml)
  Got 3 results, configured to fail if != 0
"""


def test_a_dbt_schema_change_says_what_to_do() -> None:
    assert dbt_reason(DBT_SCHEMA_CHANGE) == (
        "dbt: Compilation Error in model int_flights_enriched (models/flights/intermediate/int_flights_enriched.sql): "
        "The source and target schemas on this incremental model are out of sync! "
        "(the model's columns changed: run factory build --full-refresh)"
    )


def test_a_failed_dbt_test_is_named() -> None:
    assert dbt_reason(DBT_TEST_FAILURE) == (
        "dbt: Failure in test unique_fct_flights_flight_id (models/flights/marts/_models.yml): "
        "Got 3 results, configured to fail if != 0"
    )
