"""Call quality: per-call metrics from a transcript (`metrics.py`, pure) and the supervisor's checklist
with its 0-100 score (`checklist.py`)."""
