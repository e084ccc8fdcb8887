"""Ingest: broker export files into the system of record and the lake (``load``), uploads, the real-time event inbox."""
