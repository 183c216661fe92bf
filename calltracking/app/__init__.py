"""The process wiring: CLI, serve and replay compose every capability; nothing imports this package."""
