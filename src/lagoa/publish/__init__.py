"""Publish dbt models to gold: partitioned, Z-ordered Iceberg tables, one commit each."""
