"""Fixtures of the LSL acquisition tests.

``s007`` and ``stream_name`` come from the root ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread(one_blas_thread):
    """Live decoding runs with one BLAS thread (as LiveSession sets); so do these tests."""
