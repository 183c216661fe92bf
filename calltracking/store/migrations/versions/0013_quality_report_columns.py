"""Quality scores carry what the report reads: the averaged figures and the checklist's said-or-not; the
rollups' whole-PBX rows get an index of their own (the dashboard's charts read them per quarter hour).

Reading a month's report decoded every score's full metrics and checklist (hits with their text), about
2 kB a call: seconds for a busy month. Both columns are filled here from the stored JSON, in SQL.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As `calltracking.quality.report.AVERAGED` was when this was written (a migration does not follow code).
AVERAGED = (
    "manager_talk_share",
    "customer_talk_share",
    "silence_share",
    "longest_monologue_seconds",
    "overtalk_seconds",
    "manager_words_per_minute",
    "customer_words_per_minute",
    "manager_first_word_seconds",
    "manager_hesitations_per_minute",
)

BACKFILL = {
    "postgresql": (
        "UPDATE quality_scores SET figures = json_build_object("
        + ", ".join(f"'{name}', (metrics::jsonb -> '{name}')" for name in AVERAGED)
        + "), said = COALESCE((SELECT json_object_agg(k.kind || '.' || (e ->> 'name'),"
        " jsonb_array_length(e -> 'hits') > 0)"
        " FROM (VALUES ('required'), ('forbidden')) AS k(kind),"
        " jsonb_array_elements(checklist::jsonb -> k.kind) AS e), '{}'::json)"
    ),
    "sqlite": (
        "UPDATE quality_scores SET figures = json_object("
        + ", ".join(f"'{name}', json_extract(metrics, '$.{name}')" for name in AVERAGED)
        + "), said = (SELECT json_group_object(k.kind || '.' || json_extract(e.value, '$.name'),"
        " json(CASE WHEN json_array_length(e.value, '$.hits') > 0 THEN 'true' ELSE 'false' END))"
        " FROM (SELECT 'required' AS kind UNION ALL SELECT 'forbidden') AS k,"
        " json_each(quality_scores.checklist, '$.' || k.kind) AS e)"
    ),
}


def upgrade() -> None:
    op.add_column("quality_scores", sa.Column("figures", sa.JSON(), nullable=True))
    op.add_column("quality_scores", sa.Column("said", sa.JSON(), nullable=True))
    op.execute(BACKFILL[op.get_bind().dialect.name])
    totals = sa.text("extension = ''")
    op.create_index(
        "ix_manager_rollups_totals",
        "manager_rollups",
        ["grain", "bucket"],
        postgresql_where=totals,
        sqlite_where=totals,
    )


def downgrade() -> None:
    op.drop_index("ix_manager_rollups_totals", table_name="manager_rollups")
    op.drop_column("quality_scores", "said")
    op.drop_column("quality_scores", "figures")
