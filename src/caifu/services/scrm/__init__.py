"""scrm."""
