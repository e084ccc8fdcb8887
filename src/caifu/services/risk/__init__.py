"""Risk news: the intake of documents into stories (``intake``), the watched folder
(``watch``), and what the API and the CLI read (``intake.stories`` …)."""
