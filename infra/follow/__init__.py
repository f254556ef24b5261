"""infra/follow."""
