"""Use cases, one package per bounded context; only ``container`` picks concrete adapters."""
