"""infra/kafka."""
