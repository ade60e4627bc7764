"""SQL adapters on SQLAlchemy Core: PostgreSQL (psycopg 3) and SQLite."""
