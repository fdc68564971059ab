"""Opening a database: which URLs are accepted, what a bad one says, how SQLite connections are set up."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from forecaster.errors import DatabaseUnavailable, UserError
from forecaster.store.database import make_engine, upgrade


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://admin:hunter2@db.example/forecasts",
            "mysql://admin:***@db.example/forecasts: unsupported database 'mysql'",
        ),
        ("not a url with hunter2 in it", "the database URL is malformed"),
        ("postgresql://admin:hunter2@db.example:port/forecasts", "the database URL is malformed"),
        (
            "postgresql+nosuchdriver://admin:hunter2@db.example/forecasts",
            "postgresql+nosuchdriver://admin:***@db.example/forecasts: Can't load plugin",
        ),
        (
            "sqlite://admin:hunter2@db.example/forecasts.db",
            "sqlite://admin:***@db.example/forecasts.db: Invalid SQLite URL",
        ),
    ],
)
def test_a_bad_url_is_a_one_line_user_error_that_hides_the_password(url, expected):
    with pytest.raises(UserError) as raised:
        make_engine(url)
    message = str(raised.value)
    assert message.startswith(expected)
    assert "hunter2" not in message and "\n" not in message


def test_an_unreachable_server_is_a_database_unavailable_error_that_hides_the_password():
    engine = make_engine("postgresql://postgres:hunter2@127.0.0.1:1/forecasts")
    with pytest.raises(DatabaseUnavailable) as raised:
        upgrade(engine)
    message = str(raised.value)
    assert message.startswith("postgresql+psycopg://postgres:***@127.0.0.1:1/forecasts: cannot connect")
    assert "hunter2" not in message and "\n" not in message
    engine.dispose()


def test_a_sqlite_file_in_a_missing_directory_is_a_user_error_naming_the_directory(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(UserError, match=f"directory {missing} does not exist"):
        make_engine(f"sqlite:///{missing / 'forecaster.db'}")


def test_a_file_that_is_not_a_sqlite_database_is_a_user_error_naming_it(tmp_path):
    path = tmp_path / "forecaster.db"
    path.write_text("date,close\n2024-03-04,1.0\n")

    with pytest.raises(UserError, match=f"{path} is not a SQLite database"):
        make_engine(f"sqlite:///{path}", create=False)
    assert path.read_text() == "date,close\n2024-03-04,1.0\n", "left as it was"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_urls_use_psycopg_3(scheme):
    engine = make_engine(f"{scheme}://user:secret@db.example:5432/forecasts")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.password == "secret"
    engine.dispose()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal_with_a_busy_timeout(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        }
    assert pragma == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 30000}
    engine.dispose()


def test_sqlite_transactions_include_ddl_and_roll_back_whole(sqlite_url):
    engine = make_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("abandon the transaction")
    assert "t" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_savepoints_work(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError), connection.begin_nested():
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            raise RuntimeError("roll back to the savepoint")
        connection.exec_driver_sql("INSERT INTO t VALUES (2)")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT x FROM t").scalars().all() == [2]
    engine.dispose()


def test_a_missing_sqlite_file_is_created_only_when_asked(tmp_path):
    path = tmp_path / "forecaster.db"
    with pytest.raises(UserError, match=f"no database file at {path}; create it with `forecaster db upgrade`"):
        make_engine(f"sqlite:///{path}", create=False)
    assert not path.exists()

    make_engine(f"sqlite:///{path}").dispose()

    assert path.exists()


def test_a_sqlite_file_deleted_under_an_engine_is_an_error_not_a_new_empty_database(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)  # leaves a pooled connection open on the file
    (tmp_path / "forecaster.db").unlink()

    with pytest.raises(sa.exc.OperationalError, match="unable to open database file"):
        engine.connect()
    assert not (tmp_path / "forecaster.db").exists()
    engine.dispose()


def test_through_pgbouncer_in_transaction_mode_statements_are_not_prepared_on_the_server(pgbouncer, private_postgres):
    """psycopg prepares a statement on the server from its fifth execution; behind a transaction
    pooler the next transaction may run on a server connection that lacks it, or has another
    client's ("prepared statement "_pg3_0" already exists" when this hook is taken out)."""
    engine, direct = make_engine(pgbouncer.url), make_engine(private_postgres.url)
    clients = [engine.connect() for _ in range(3)]
    try:
        for _ in range(30):
            for client in clients:
                with client.begin():
                    client.execute(sa.text("SELECT count(*) FROM pg_class WHERE relname = :name"), {"name": "x"})
        assert all(client.connection.dbapi_connection.prepare_threshold is None for client in clients)
        with direct.connect() as connection:
            assert connection.connection.dbapi_connection.prepare_threshold == 5, "straight to the server: prepared"
    finally:
        for client in clients:
            client.close()
        engine.dispose()
        direct.dispose()
