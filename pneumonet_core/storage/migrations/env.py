"""Alembic's environment for the shared PostgreSQL schema: run on the connection (and inside
the transaction) that `storage.migrations.upgrade` hands over."""

from alembic import context

from pneumonet_core.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
