"""Quality gates: GX 1.x suites validated as blocking Dagster asset checks."""
