"""Rows: the RunRecord schema, the Parquet store and named queries."""
