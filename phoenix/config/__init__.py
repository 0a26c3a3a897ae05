"""Environment config: pydantic models, loading from YAML, one-line errors."""
