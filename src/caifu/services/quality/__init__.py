"""Data quality: each load's profile, thresholds that raise and resolve alerts, and the
history, freshness and alerts the CLI, the API and the console read
(``docs/data-quality.md``)."""
