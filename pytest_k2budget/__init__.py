"""pytest-k2budget: per-service CPU/RAM budgets of a container stack as pytest acceptance tests."""

from __future__ import annotations

__version__ = "0.1.0"
