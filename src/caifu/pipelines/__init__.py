"""Logic over tables as Ibis expressions: they take tables, return tables, open nothing."""
