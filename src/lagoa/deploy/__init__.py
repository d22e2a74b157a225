"""Running a project elsewhere: Airflow DAGs (and, with them, MWAA's packaging)."""
