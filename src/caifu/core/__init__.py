"""Pure domain: entities, identifiers, data levels and masking. No I/O."""
