"""Terminal views (Rich) per context: progress bars and summaries around the services."""
