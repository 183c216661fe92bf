"""Index each CRM phone by its last six digits (reversed), so the caller lookup asks for the exact number
and its last-digits fallback in one query whose plan PostgreSQL can cache (bench/lookup.py).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entity_phones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tail_key", sa.String(length=8), nullable=True))
    op.execute("UPDATE entity_phones SET tail_key = substr(digits_reversed, 1, 6)")
    with op.batch_alter_table("entity_phones", schema=None) as batch_op:
        batch_op.alter_column("tail_key", existing_type=sa.String(length=8), nullable=False)
        batch_op.create_index("ix_entity_phones_tail_key", ["tail_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("entity_phones", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_phones_tail_key")
        batch_op.drop_column("tail_key")
