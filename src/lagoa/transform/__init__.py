"""Transform with dbt: generated profiles and sources, dbt-core run in process."""
