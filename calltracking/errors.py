"""The one base error of the service, and the few kinds callers tell apart."""


class CalltrackingError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(CalltrackingError):
    """The settings (file, environment or flags) cannot be used."""


class DatabaseUnavailable(CalltrackingError):
    """The database could not be reached or refused the write; the caller keeps the data and retries."""


class SpoolCorrupt(CalltrackingError):
    """A spool file holds a record that cannot be read back (a torn write is not this: it is skipped)."""


class CallNotJournaled(CalltrackingError):
    """A completed call could not be written to the spool's journal (disk full, I/O error)."""


class TranscriptionUnavailable(CalltrackingError):
    """No speech model serves a language (missing or broken model directory): jobs wait, not crash."""


class QualityConfigInvalid(CalltrackingError):
    """The call-quality checklist file cannot be used: not YAML, or a field missing or wrong (named)."""
