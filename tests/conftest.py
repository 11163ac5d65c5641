"""Shared pytest fixtures: the running test world's endpoints, read from its env file.

The world is started by `tests/services/up` (README's test command does it); these
tests never start their own copies of the shared services.
"""

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "services"))


def _read_env_file() -> dict[str, str]:
    path = Path(os.environ.get("KS_ENV_FILE", TESTS / "services" / "run" / "env"))
    if not path.exists():
        pytest.exit(f"no test world: {path} is missing; run tests/services/up first", returncode=2)
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


@pytest.fixture(scope="session")
def world() -> dict[str, str]:
    """The env file of the running test world (KS_* keys)."""
    return _read_env_file()
