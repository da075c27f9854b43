"""reports: decisions without text, hourly roll-ups, conversations; ticket indexes for reports

Revision ID: 0003_reports
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_reports"
down_revision = "0002_console_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_report_decisions_decided_at", "report_decisions", ["decided_at"])
    op.create_index("ix_report_decisions_action_at", "report_decisions", ["action", "decided_at", "intent"])
    op.create_table(
        "report_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "channel", "lang", "topic", "action", "reason", "model_version"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_conversations",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("started_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_report_conversations_started", "report_conversations",
                    ["started_hour", "channel", "lang", "topic", "handed_off_at"])
    # Covers the report's read of a period's tickets (no lookup per ticket); tickets change a few
    # times each, so the wider index costs little on writes.
    op.create_index("ix_tickets_report_created", "tickets",
                    ["created_at", "priority", "first_responded_at", "resolved_at", "sla_warned_at", "sla_breached_at",
                     "assignee_id", "csat", "topic", "channel", "lang"])
    op.create_index("ix_tickets_report_resolved", "tickets", ["resolved_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_report_resolved", table_name="tickets")
    op.drop_index("ix_tickets_report_created", table_name="tickets")
    op.drop_table("report_conversations")
    op.drop_table("report_hourly")
    op.drop_table("report_decisions")
