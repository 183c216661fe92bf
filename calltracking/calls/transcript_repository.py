"""Transcripts' SQL below the transcription worker: the full-text search the call history filters by, and
the deletion retention does with the audio.

Search is every word of the query, as words (never as query syntax: quotes, `-`, `OR`, `*` and the like
are only characters). PostgreSQL matches against `transcripts.search_vector`, written with the
transcript (`to_tsvector` in the configuration of its language: stems, so "звонил" finds "звонила");
SQLite against the FTS5 table `transcripts_fts`, kept in step with `transcripts` by triggers (migration
0011), words as written (no stemming).
"""

from __future__ import annotations

import re
from typing import Any, cast

from sqlalchemy import Table, delete, false, func, literal, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from calltracking.store.tables import SQLITE_SEARCH_TABLE, CallRow, TranscriptRow

TRANSCRIPTS = cast(Table, TranscriptRow.__table__)
# PostgreSQL's text search configuration per transcript language; any other language is split into words
# without stemming or stop words.
SEARCH_CONFIGS = {"ru": "russian", "en": "english"}
FALLBACK_CONFIG = "simple"
# At most this many words of a query are searched for (the API also bounds its length).
MAX_WORDS = 32
_WORD = re.compile(r"\w+")


def search_config(language: str) -> str:
    """`ru`, `ru-RU` and `ru_RU` are Russian."""
    return SEARCH_CONFIGS.get(re.split(r"[-_]", language, maxsplit=1)[0].lower(), FALLBACK_CONFIG)


def query_words(query: str) -> list[str]:
    """The words of a search: letters and digits of any script, everything else a separator."""
    return _WORD.findall(query)[:MAX_WORDS]


def search_vector(dialect: str, language: str, transcript_text: str) -> Any:
    """The value of `search_vector` for a transcript being written (nothing on SQLite: FTS5 holds it)."""
    if dialect != "postgresql":
        return None
    return func.to_tsvector(literal(search_config(language), REGCONFIG), transcript_text)


def transcript_matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A condition on `calls.id`: the call's transcript contains every word of `query`."""
    words = query_words(query)
    if not words:
        return false()
    if dialect == "postgresql":
        phrase = " ".join(words)
        # The query in each configuration a transcript may be written in, OR-ed: a transcript matches
        # through the one of its own language (the others only add forms of the same words).
        configs = sorted({*SEARCH_CONFIGS.values(), FALLBACK_CONFIG})
        tsquery: ColumnElement[Any] = func.plainto_tsquery(literal(configs[0], REGCONFIG), phrase)
        for config in configs[1:]:
            tsquery = tsquery.op("||")(func.plainto_tsquery(literal(config, REGCONFIG), phrase))
        matching = select(TRANSCRIPTS.c.call_id).where(TRANSCRIPTS.c.search_vector.op("@@")(tsquery))
    else:
        # Each word an FTS5 string ("..." with " doubled): a word is never read as an operator.
        fts_query = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        matching = (
            select(text("rowid"))
            .select_from(text(SQLITE_SEARCH_TABLE))
            .where(text(f"{SQLITE_SEARCH_TABLE} MATCH :fts_query").bindparams(fts_query=fts_query))
        )
    return CallRow.id.in_(matching)


async def delete_transcript(session: AsyncSession, call_id: int) -> bool:
    """Whether the call had a transcript."""
    result = await session.execute(
        delete(TRANSCRIPTS).where(TRANSCRIPTS.c.call_id == call_id).returning(TRANSCRIPTS.c.call_id)
    )
    return result.first() is not None
