"""Idempotency keys are per token: two API clients may pick the same key without meeting each other.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("originate_requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_originate_requests_idempotency_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_originate_requests_token_id_idempotency_key", ["token_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("originate_requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_originate_requests_token_id_idempotency_key", type_="unique")
        batch_op.create_unique_constraint("uq_originate_requests_idempotency_key", ["idempotency_key"])
