"""Repository-level test configuration: the self-tests drive the plugin through pytest's own `pytester`."""

from __future__ import annotations

pytest_plugins = ["pytester"]
