"""I/O behind narrow interfaces: system of record, lake, engines, file sources."""
