"""RollbackDrills: a scheduled function that proves each fleet's rollback target still works."""
