"""The call: its record, the log that makes it durable, live events, and its SQL."""
