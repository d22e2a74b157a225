"""Sources: where data comes from (files now; HTTP and Postgres later)."""
