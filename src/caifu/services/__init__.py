"""Use cases: workspace, ingest, demo. Only ``container`` picks concrete adapters."""
