"""console at incident scale: SLA due columns and indexes for counts and keyset paging, tags,
incidents, the full-text search table (FTS5 on SQLite, tsvector + GIN on PostgreSQL)

Revision ID: 0002_console_scale
Revises: 0001
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0002_console_scale'
down_revision = '0001'
branch_labels = None
depends_on = None

OPEN_SQL = "status IN ('new', 'open', 'pending_user')"  # as in handoff.models (kept literal here)
CLOSED_SQL = "status IN ('resolved', 'closed')"
FILTERS = ['status', 'assignee_id', 'channel', 'topic', 'created_at', 'incident_id']  # handoff.models.FILTER_COLUMNS
WARN_AT = 0.75  # the default sla.warn_at; the service recomputes both columns on every SLA change


def _aware(d):
    if d is None:
        return None
    if isinstance(d, str):
        d = datetime.fromisoformat(d)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        'incidents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('keywords', sa.JSON(), nullable=False),
        sa.Column('message_en', sa.Text(), nullable=False),
        sa.Column('message_zh', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)

    op.create_table(
        'ticket_tags',
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('ticket_id', 'tag'),
    )
    with op.batch_alter_table('ticket_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_tags_tag'), ['tag'], unique=False)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_warn_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('incident_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_tickets_incident_id', 'incidents', ['incident_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_tickets_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_tickets_open_order', ['priority_rank', 'first_response_due', 'id', *FILTERS],
                              unique=False, sqlite_where=sa.text(OPEN_SQL), postgresql_where=sa.text(OPEN_SQL))
        batch_op.create_index('ix_tickets_resolved_order', ['resolved_at', 'id', *FILTERS], unique=False,
                              sqlite_where=sa.text(CLOSED_SQL), postgresql_where=sa.text(CLOSED_SQL))
        batch_op.create_index('ix_tickets_counts', ['status', 'priority_rank', 'assignee_id', 'sla_due_at',
                                                    'sla_warn_at'], unique=False)

    bind = op.get_bind()
    # Existing tickets: the SLA columns (from the due times they already have), a due time for the
    # queue order where one was missing, and their search documents.
    tickets = sa.table('tickets', sa.column('id', sa.Integer), sa.column('created_at', sa.DateTime(timezone=True)),
                       sa.column('first_response_due', sa.DateTime(timezone=True)),
                       sa.column('resolution_due', sa.DateTime(timezone=True)),
                       sa.column('first_responded_at', sa.DateTime(timezone=True)),
                       sa.column('sla_due_at', sa.DateTime(timezone=True)),
                       sa.column('sla_warn_at', sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(tickets.c.id, tickets.c.created_at, tickets.c.first_response_due,
                                  tickets.c.resolution_due, tickets.c.first_responded_at)).all()
    for r in rows:
        start = _aware(r.created_at)
        frd = _aware(r.first_response_due) or start
        due = frd if r.first_responded_at is None else (_aware(r.resolution_due) or frd)
        warn = start + timedelta(seconds=(due - start).total_seconds() * WARN_AT) if start and due else None
        bind.execute(tickets.update().where(tickets.c.id == r.id)
                     .values(first_response_due=frd, sla_due_at=due, sla_warn_at=warn))

    # The resolved view is ordered by resolved_at: tickets closed without a resolution get theirs.
    op.execute("UPDATE tickets SET resolved_at = updated_at WHERE status IN ('resolved', 'closed') "
               "AND resolved_at IS NULL")
    if bind.dialect.name == 'postgresql':
        op.execute('CREATE TABLE ticket_search (ticket_id integer PRIMARY KEY REFERENCES tickets(id) '
                   'ON DELETE CASCADE, doc tsvector NOT NULL)')
        op.execute('CREATE INDEX ix_ticket_search_doc ON ticket_search USING gin (doc)')
    else:
        # unicode61 over our own tokens joined by spaces (handoff/search.py does the tokenizing).
        op.execute("CREATE VIRTUAL TABLE ticket_search USING fts5(doc, tokenize = 'unicode61 remove_diacritics 0', "
                   "detail = 'full')")
        op.execute("CREATE TRIGGER ticket_search_delete AFTER DELETE ON tickets BEGIN "
                   "DELETE FROM ticket_search WHERE rowid = old.id; END")
    if rows:
        _index_existing(bind, [r.id for r in rows])


def _index_existing(bind, ids) -> None:
    """Build the search documents of the tickets already there (same code as the service)."""
    from handoff import search

    search.reindex_sync(bind, ids)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS ticket_search_delete')
    op.execute('DROP TABLE IF EXISTS ticket_search')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_counts')
        batch_op.drop_index('ix_tickets_resolved_order')
        batch_op.drop_index('ix_tickets_open_order')
        batch_op.drop_index(batch_op.f('ix_tickets_incident_id'))
        batch_op.drop_constraint('fk_tickets_incident_id', type_='foreignkey')
        batch_op.drop_column('incident_id')
        batch_op.drop_column('sla_warn_at')
        batch_op.drop_column('sla_due_at')
    with op.batch_alter_table('ticket_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_tags_tag'))
    op.drop_table('ticket_tags')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_status'))
    op.drop_table('incidents')
