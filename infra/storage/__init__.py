"""infra/storage."""
