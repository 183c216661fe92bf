"""Call quality: each transcribed call's figures and score under the checklist in force.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_scores",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("manager", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("checklist_sha256", sa.String(length=64), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_quality_scores_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_quality_scores")),
    )
    op.create_index("ix_quality_scores_started_at", "quality_scores", ["started_at"])
    op.create_index("ix_quality_scores_manager_started_at", "quality_scores", ["manager", "started_at"])


def downgrade() -> None:
    op.drop_table("quality_scores")
