"""Stats and call tracking: per-call attribution and flags, the rollups reports read, teams, lead
conversions, the website's number pool, and the indexes period reports need.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from calltracking.calls.rollup_repository import rebuild_statements

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_number", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("queue_wait_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("medium", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("campaign", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("tracking_session_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_time_caller", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("is_target", sa.Boolean(), nullable=True))
    # Calls logged before this revision: their customer's number, from the direction, when it is a phone
    # number in E.164 (`CallRecord.customer_number`).
    number = "CASE direction WHEN 'inbound' THEN caller_number WHEN 'outbound' THEN callee_number END"
    is_e164 = (
        f"({number}) ~ '^[+][0-9]{{1,15}}$'"
        if op.get_bind().dialect.name == "postgresql"
        else f"length({number}) <= 16 AND ({number}) GLOB '+[0-9]*'"
        f" AND substr({number}, 2) NOT GLOB '*[^0-9]*'"
    )
    op.execute(f"UPDATE calls SET customer_number = {number} WHERE {is_e164}")
    op.create_index("ix_calls_customer_number_started_at", "calls", ["customer_number", "started_at"])
    op.create_index("ix_calls_queue_started_at", "calls", ["queue", "started_at"])
    talked = sa.text("status = 'answered' AND customer_number IS NOT NULL AND manager IS NOT NULL")
    op.create_index(
        "ix_calls_talked_customers",
        "calls",
        ["started_at", "manager", "customer_number"],
        postgresql_where=talked,
        sqlite_where=talked,
    )
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team", sa.String(length=128), nullable=True))
    with op.batch_alter_table("crm_entities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("converted_to", sa.String(length=128), nullable=True))
    op.create_index("ix_deals_opened_at", "deals", ["opened_at"])
    op.create_index("ix_deals_closed_at", "deals", ["closed_at"])
    op.create_index(
        "ix_callbacks_missed_at",
        "callbacks",
        ["missed_at", "manager", "state", "closed_at", "due_at", "seconds_to_return"],
    )
    op.create_table(
        "manager_rollups",
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=64), nullable=False),
        sa.Column("inbound_received", sa.Integer(), nullable=False),
        sa.Column("inbound_answered", sa.Integer(), nullable=False),
        sa.Column("inbound_missed", sa.Integer(), nullable=False),
        sa.Column("outbound_made", sa.Integer(), nullable=False),
        sa.Column("outbound_answered", sa.Integer(), nullable=False),
        sa.Column("internal_calls", sa.Integer(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("ring_seconds_answered", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "bucket", "pbx", "extension", name=op.f("pk_manager_rollups")),
    )
    op.create_table(
        "source_rollups",
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("medium", sa.String(length=128), nullable=False),
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "grain", "bucket", "pbx", "source", "medium", "campaign", name=op.f("pk_source_rollups")
        ),
    )
    op.create_table(
        "tracking_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("visitor_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("is_fallback", sa.Boolean(), nullable=False),
        sa.Column("utm_source", sa.String(length=128), nullable=True),
        sa.Column("utm_medium", sa.String(length=128), nullable=True),
        sa.Column("utm_campaign", sa.String(length=128), nullable=True),
        sa.Column("utm_content", sa.String(length=128), nullable=True),
        sa.Column("utm_term", sa.String(length=128), nullable=True),
        sa.Column("gclid", sa.String(length=256), nullable=True),
        sa.Column("yclid", sa.String(length=256), nullable=True),
        sa.Column("landing_page", sa.String(length=2048), nullable=True),
        sa.Column("referrer", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_sessions")),
    )
    op.create_index("ix_tracking_sessions_number_created_at", "tracking_sessions", ["number", "created_at"])
    op.create_index("ix_tracking_sessions_visitor_id", "tracking_sessions", ["visitor_id"])
    op.create_table(
        "tracking_pool_numbers",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_tracking_pool_numbers")),
    )
    op.create_index(
        "ix_tracking_pool_numbers_reserved_until",
        "tracking_pool_numbers",
        ["reserved_until", "last_reserved_at"],
    )
    # The calls logged before this revision count in the reports too.
    for statement in rebuild_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("tracking_pool_numbers")
    op.drop_table("tracking_sessions")
    op.drop_table("source_rollups")
    op.drop_table("manager_rollups")
    op.drop_index("ix_callbacks_missed_at", table_name="callbacks")
    op.drop_index("ix_deals_closed_at", table_name="deals")
    op.drop_index("ix_deals_opened_at", table_name="deals")
    with op.batch_alter_table("crm_entities", schema=None) as batch_op:
        batch_op.drop_column("converted_to")
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.drop_column("team")
    op.drop_index("ix_calls_talked_customers", table_name="calls")
    op.drop_index("ix_calls_queue_started_at", table_name="calls")
    op.drop_index("ix_calls_customer_number_started_at", table_name="calls")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        for column in (
            "is_target",
            "first_time_caller",
            "tracking_session_id",
            "campaign",
            "medium",
            "source",
            "queue_wait_seconds",
            "customer_number",
        ):
            batch_op.drop_column(column)
