"""Reading broker export files (CSV in UTF-8/GBK/GB18030, Parquet, JSON Lines)."""
