"""Alembic environment. Migrations always run on a connection handed in by `calltracking.store.engine`,
so the same code path serves `calltracking migrate`, `serve` and the tests, on SQLite and PostgreSQL."""

from alembic import context

from calltracking.store.tables import Base, is_modelled

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `calltracking migrate`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=is_modelled,
)
with context.begin_transaction():
    context.run_migrations()
