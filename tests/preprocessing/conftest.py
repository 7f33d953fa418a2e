"""Fixtures of the online preprocessing tests.

``s007`` comes from the root ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread(one_blas_thread):
    """Live decoding runs with one BLAS thread (as LiveSession sets); so do these tests."""
