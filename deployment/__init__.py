"""Local servers for the tests and the MWAA-shaped deployment: PostgreSQL and Redis on 127.0.0.1, started and
stopped by process id. Not part of the provider package."""
