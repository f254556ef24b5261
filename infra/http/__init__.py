"""infra/http."""
