"""Running the factory in-process: the Dagster instance, runs with progress, run reports."""
