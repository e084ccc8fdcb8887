"""Query engines behind Ibis: DuckDB in-process by default."""
