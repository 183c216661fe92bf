"""Who may use the API: tokens, their roles, and their SQL."""
