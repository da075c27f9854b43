"""Alembic environment: migrations run on a connection handed in by `handoff.db.upgrade`, or on
`sqlalchemy.url` when run from the alembic CLI."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from handoff.models import Base
from handoff.reports import models as _report_models  # noqa: F401  (report tables in the metadata)

target_metadata = Base.metadata
config = context.config


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


conn = config.attributes.get("connection")
if conn is not None:
    run(conn)
else:
    engine = engine_from_config(config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as c:
        run(c)
