"""The CRM mirror (managers, contacts/companies/leads, phones, deals), what each call matched, callback
tasks for missed calls and the merge log.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_manager_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_assignment_cursors")),
    )
    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("contact", sa.String(length=128), nullable=True),
        sa.Column("company", sa.String(length=128), nullable=True),
        sa.Column("lead", sa.String(length=128), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_won", sa.Boolean(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("external_id", name=op.f("uq_deals_external_id")),
    )
    op.create_index("ix_deals_company", "deals", ["company"], unique=False)
    op.create_index("ix_deals_contact", "deals", ["contact"], unique=False)
    op.create_index("ix_deals_lead", "deals", ["lead"], unique=False)
    op.create_index("ix_deals_owner", "deals", ["owner"], unique=False)
    op.create_table(
        "entity_merges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_ids", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_merges")),
    )
    op.create_table(
        "managers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("extensions", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_managers_external_id")),
    )
    op.create_table(
        "crm_entities",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("company", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=128), nullable=True),
        sa.Column("medium", sa.String(length=128), nullable=True),
        sa.Column("campaign", sa.String(length=128), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("first_call_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_call_id"],
            ["calls.id"],
            name=op.f("fk_crm_entities_first_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["crm_entities.id"],
            name=op.f("fk_crm_entities_merged_into_id_crm_entities"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_entities")),
        sa.UniqueConstraint("kind", "external_id", name=op.f("uq_crm_entities_kind_external_id")),
    )
    op.create_index("ix_crm_entities_kind_created_at", "crm_entities", ["kind", "created_at"], unique=False)
    op.create_index("ix_crm_entities_owner", "crm_entities", ["owner"], unique=False)
    op.create_table(
        "call_matches",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("digits_reversed", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("matched_by", sa.String(length=8), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("lead_created", sa.Boolean(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_matches_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["crm_entities.id"],
            name=op.f("fk_call_matches_entity_id_crm_entities"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_matches")),
    )
    op.create_index("ix_call_matches_digits_reversed", "call_matches", ["digits_reversed"], unique=False)
    op.create_index(op.f("ix_call_matches_entity_id"), "call_matches", ["entity_id"], unique=False)
    op.create_index("ix_call_matches_number", "call_matches", ["number"], unique=False)
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("open_number", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("missed_call_id", sa.Integer(), nullable=True),
        sa.Column("missed_calls", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("manager", sa.String(length=128), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_missed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by_call_id", sa.Integer(), nullable=True),
        sa.Column("returned_by", sa.String(length=128), nullable=True),
        sa.Column("seconds_to_return", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["closed_by_call_id"],
            ["calls.id"],
            name=op.f("fk_callbacks_closed_by_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["crm_entities.id"],
            name=op.f("fk_callbacks_entity_id_crm_entities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["missed_call_id"],
            ["calls.id"],
            name=op.f("fk_callbacks_missed_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
        sa.UniqueConstraint("open_number", name=op.f("uq_callbacks_open_number")),
    )
    op.create_index("ix_callbacks_manager", "callbacks", ["manager"], unique=False)
    op.create_index("ix_callbacks_number", "callbacks", ["number"], unique=False)
    op.create_index("ix_callbacks_state_due_at", "callbacks", ["state", "due_at"], unique=False)
    op.create_table(
        "entity_phones",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=32), nullable=True),
        sa.Column("digits_reversed", sa.String(length=64), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["crm_entities.id"],
            name=op.f("fk_entity_phones_entity_id_crm_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_phones")),
    )
    op.create_index("ix_entity_phones_digits_reversed", "entity_phones", ["digits_reversed"], unique=False)
    op.create_index("ix_entity_phones_e164", "entity_phones", ["e164"], unique=False)
    op.create_index(op.f("ix_entity_phones_entity_id"), "entity_phones", ["entity_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_entity_phones_entity_id"), table_name="entity_phones")
    op.drop_index("ix_entity_phones_e164", table_name="entity_phones")
    op.drop_index("ix_entity_phones_digits_reversed", table_name="entity_phones")
    op.drop_table("entity_phones")
    op.drop_index("ix_callbacks_state_due_at", table_name="callbacks")
    op.drop_index("ix_callbacks_number", table_name="callbacks")
    op.drop_index("ix_callbacks_manager", table_name="callbacks")
    op.drop_table("callbacks")
    op.drop_index("ix_call_matches_number", table_name="call_matches")
    op.drop_index(op.f("ix_call_matches_entity_id"), table_name="call_matches")
    op.drop_index("ix_call_matches_digits_reversed", table_name="call_matches")
    op.drop_table("call_matches")
    op.drop_index("ix_crm_entities_owner", table_name="crm_entities")
    op.drop_index("ix_crm_entities_kind_created_at", table_name="crm_entities")
    op.drop_table("crm_entities")
    op.drop_table("managers")
    op.drop_table("entity_merges")
    op.drop_index("ix_deals_owner", table_name="deals")
    op.drop_index("ix_deals_lead", table_name="deals")
    op.drop_index("ix_deals_contact", table_name="deals")
    op.drop_index("ix_deals_company", table_name="deals")
    op.drop_table("deals")
    op.drop_table("assignment_cursors")
