"""Alembic environment: runyard runs migrations on a connection it hands over (see SQLStore)."""

from alembic import context

from runyard.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - runyard always passes its connection
    raise RuntimeError("runyard migrations run through runyard.store, not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
