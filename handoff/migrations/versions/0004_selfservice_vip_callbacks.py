"""self-service: VIP account managers (offer first) and callback requests

Revision ID: 0004_selfservice
Revises: 0003_reports
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_selfservice'
down_revision = '0003_reports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts') as b:
        b.add_column(sa.Column('manager_id', sa.Integer(), nullable=True))
        b.create_foreign_key('fk_contacts_manager', 'agents', ['manager_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('tickets') as b:
        b.add_column(sa.Column('offered_to_id', sa.Integer(), nullable=True))
        b.add_column(sa.Column('offer_until', sa.DateTime(timezone=True), nullable=True))
        b.create_foreign_key('fk_tickets_offered_to', 'agents', ['offered_to_id'], ['id'], ondelete='SET NULL')
    op.create_table('callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_callbacks_status_due', 'callbacks', ['status', 'due_at'], unique=False)
    op.create_index(op.f('ix_callbacks_ticket_id'), 'callbacks', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_callbacks_ticket_id'), table_name='callbacks')
    op.drop_index('ix_callbacks_status_due', table_name='callbacks')
    op.drop_table('callbacks')
    with op.batch_alter_table('tickets') as b:
        b.drop_constraint('fk_tickets_offered_to', type_='foreignkey')
        b.drop_column('offer_until')
        b.drop_column('offered_to_id')
    with op.batch_alter_table('contacts') as b:
        b.drop_constraint('fk_contacts_manager', type_='foreignkey')
        b.drop_column('manager_id')
