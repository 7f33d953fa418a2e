"""The deep decoder fixtures, defined in ``tests/decoders/conftest.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bci_tests_decoders_conftest", Path(__file__).resolve().parents[1] / "decoders" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

CH_NAMES = _fixtures.CH_NAMES
SFREQ = _fixtures.SFREQ
N_TIMES = _fixtures.N_TIMES
FAST = _fixtures.FAST
SMALL_ARCH = _fixtures.SMALL_ARCH
synthetic_epochs = _fixtures.synthetic_epochs
make_epochs = _fixtures.make_epochs
epochs = _fixtures.epochs
make = _fixtures.make
fitted = _fixtures.fitted
s007 = _fixtures.s007
