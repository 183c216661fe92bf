"""Index the raw caller and callee: a number search matches them too, and without an index it scanned the
whole calls table (bench/api.py: 100k calls, 25 ms of PostgreSQL time per search, 0.09 ms with these).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_caller", ["caller"], unique=False)
        batch_op.create_index("ix_calls_callee", ["callee"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_callee")
        batch_op.drop_index("ix_calls_caller")
