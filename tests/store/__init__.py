"""forecaster.store: opening a database, the migrations, and each table read and written, on SQLite and PostgreSQL."""
