"""Fixtures the integration tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LIBRARIES = ["aws-lambda-powertools[tracer]==3.37.0", "mangum==0.22.0", "fastapi==0.163.2"]


@pytest.fixture(scope="session")
def library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real libraries installed as a user ships them in a function's zip: Powertools (which brings botocore
    and its own urllib3), Mangum and FastAPI."""
    root = tmp_path_factory.mktemp("libraries")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(root)]
    subprocess.run([*command, *LIBRARIES], check=True, capture_output=True)
    return root
