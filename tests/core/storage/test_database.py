"""storage: the engine chosen by PNEUMONET_DATABASE_URL, and the PostgreSQL schema from Alembic."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pneumonet_core.storage import database, migrations, schema


def test_without_a_url_state_stays_in_sqlite_files(isolated_state):
    assert database.database_url() is None and not database.is_shared()
    engine = database.engine_for(isolated_state / "x.sqlite")
    assert engine.dialect.name == "sqlite"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_a_postgresql_url_is_used_through_psycopg(monkeypatch, given, used):
    monkeypatch.setenv(database.DATABASE_URL_VARIABLE, given)
    assert database.database_url() == used and database.is_shared()


def test_another_kind_of_url_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(database.DATABASE_URL_VARIABLE, "mysql://u:secret@h/db")
    with pytest.raises(
        ValueError, match="PNEUMONET_DATABASE_URL must be a postgresql:// URL"
    ) as error:
        database.database_url()
    assert "secret" not in str(error.value)  # no credentials in the message


def test_postgresql_gets_the_newest_revision_matching_the_schema(shared_database):
    engine = database.engine_for(Path("unused.sqlite"))
    with database.transaction(engine) as connection:
        schema.create_tables(connection, schema.AUDIT_TABLES)
    with engine.connect() as connection:
        assert migrations.current_revision(connection) == "0001"
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert differences == []
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
    assert set(schema.metadata.tables) <= tables
