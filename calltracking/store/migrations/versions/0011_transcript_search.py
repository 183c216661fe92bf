"""Full-text search over transcripts: PostgreSQL's `search_vector` (a tsvector in the transcript
language's configuration) with a GIN index; on SQLite an FTS5 table kept in step by triggers.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The configurations of `calltracking.calls.transcript_repository.SEARCH_CONFIGS` when this was written,
# for the transcripts stored before it (later ones are written with their vector).
_CONFIG = (
    "CASE lower(split_part(replace(language, '_', '-'), '-', 1))"
    " WHEN 'ru' THEN 'russian' WHEN 'en' THEN 'english' ELSE 'simple' END"
)
_FTS = "transcripts_fts"


def upgrade() -> None:
    op.add_column(
        "transcripts",
        sa.Column("search_vector", postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite"), nullable=True),
    )
    op.create_index("ix_transcripts_search_vector", "transcripts", ["search_vector"], postgresql_using="gin")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE transcripts SET search_vector = to_tsvector(({_CONFIG})::regconfig, text)")
        return
    op.execute(f"CREATE VIRTUAL TABLE {_FTS} USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
    op.execute(f"INSERT INTO {_FTS} (rowid, text) SELECT call_id, text FROM transcripts")
    op.execute(
        f"CREATE TRIGGER {_FTS}_insert AFTER INSERT ON transcripts BEGIN"
        f" INSERT INTO {_FTS} (rowid, text) VALUES (new.call_id, new.text); END"
    )
    op.execute(
        f"CREATE TRIGGER {_FTS}_update AFTER UPDATE ON transcripts BEGIN"
        f" DELETE FROM {_FTS} WHERE rowid = old.call_id;"
        f" INSERT INTO {_FTS} (rowid, text) VALUES (new.call_id, new.text); END"
    )
    op.execute(
        f"CREATE TRIGGER {_FTS}_delete AFTER DELETE ON transcripts BEGIN"
        f" DELETE FROM {_FTS} WHERE rowid = old.call_id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {_FTS}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {_FTS}")
    op.drop_index("ix_transcripts_search_vector", table_name="transcripts")
    with op.batch_alter_table("transcripts") as batch:
        batch.drop_column("search_vector")
