"""The lake: one Delta Lake table per (tenant, fact table)."""
