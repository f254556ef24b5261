"""infra/cli."""
