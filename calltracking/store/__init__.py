"""What every capability shares about the database: the engine, the tables and their migrations."""
