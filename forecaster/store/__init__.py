"""Storage: the tables (SQLAlchemy Core), their migrations, and one module of queries per table."""
