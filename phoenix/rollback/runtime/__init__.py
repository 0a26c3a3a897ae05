"""The rollback function's runtime: its handler, logic, models and events."""
