"""agents choose the console's language: agents.locale (NULL = the browser's language)

Revision ID: 0005_agent_locale
Revises: 0004_selfservice
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_agent_locale'
down_revision = '0004_selfservice'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('locale')
