"""Where data lives on disk: the factory home, the DuckDB warehouse, datasets, model artifacts."""
