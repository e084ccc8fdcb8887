"""Chat understanding for a tenant: its taxonomy extension, labelled examples, model, tagger."""
