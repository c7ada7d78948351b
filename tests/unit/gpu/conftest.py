from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"


@pytest.fixture
def gpu_fixtures() -> Path:
    """The project's own small nvidia-smi outputs, written after the documented formats."""
    return FIXTURES
