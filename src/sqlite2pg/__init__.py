"""sqlite2pg: migrate an SQLite database into PostgreSQL and keep it in sync."""

__version__ = "0.1.0"
