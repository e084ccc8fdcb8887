"""Data contracts (one per table), vendored reference data and the demo-broker generator."""
