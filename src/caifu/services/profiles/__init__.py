"""Profiles: the build (features, tags, segment sizes), customer views, segments, tag definitions, cards, lifecycle."""
