"""The parameter checks of ``bci_toolkit._checks`` and the errors they raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bci_toolkit._checks import (
    InvalidParameterError,
    ParameterTypeError,
    TrainingDataError,
    _check_option,
    _check_positive,
    _check_positive_int,
    _check_range,
    _validate_type,
)
from bci_toolkit.errors import BCIError, EvaluationError


def test_error_classes_are_one_line_errors_and_builtin_ones() -> None:
    assert issubclass(InvalidParameterError, BCIError) and issubclass(InvalidParameterError,
                                                                      ValueError)
    # Like scikit-learn's InvalidParameterError: a wrong type is a ValueError as well.
    assert issubclass(ParameterTypeError, TypeError)
    assert issubclass(ParameterTypeError, ValueError)
    assert issubclass(TrainingDataError, EvaluationError)
    assert issubclass(TrainingDataError, ValueError)


def test_validate_type() -> None:
    assert _validate_type(3, "int", "n") == 3
    assert _validate_type(np.int64(3), "int", "n") == 3
    assert _validate_type(None, ("int", None), "n") is None
    assert _validate_type(Path("x"), "path-like", "p") == Path("x")
    with pytest.raises(ParameterTypeError, match="n must be an integer, got True"):
        _validate_type(True, "int", "n")  # a bool is not a count
    with pytest.raises(ParameterTypeError, match="x must be a number or None, got 'a'"):
        _validate_type("a", ("numeric", None), "x")
    with pytest.raises(ParameterTypeError, match="flag must be True or False, got 'no'"):
        _validate_type("no", "bool", "flag")
    with pytest.raises(ParameterTypeError, match="names must be a list of names, got 3"):
        _validate_type(3, (list, tuple), "names", "a list of names")


def test_check_option() -> None:
    assert _check_option("mode", "a", ("a", "b")) == "a"
    with pytest.raises(InvalidParameterError,
                       match=r"^mode must be one of \['a', 'b'\] \(or 'c:N'\), got 'z'$"):
        _check_option("mode", "z", ("a", "b"), extra=" (or 'c:N')")
    with pytest.raises(InvalidParameterError, match="got True"):
        _check_option("n", True, (1, 2))  # True == 1 to Python, not to a user
    with pytest.raises(InvalidParameterError, match="got array"):
        _check_option("mode", np.array(["a", "b"]), ("a", "b"))


@pytest.mark.parametrize("value, kwargs, ok", [
    (0.0, {"low": 0.0, "high": 1.0}, True),
    (0.0, {"low": 0.0, "high": 1.0, "low_inclusive": False}, False),
    (1.0, {"low": 0.0, "high": 1.0, "high_inclusive": False}, False),
    (np.nan, {"low": 0.0}, False),
    (None, {"low": 0.0, "allow_none": True}, True),
    (5, {"high": 4}, False),
])
def test_check_range(value: object, kwargs: dict, ok: bool) -> None:
    if ok:
        assert _check_range("x", value, **kwargs) is value
    else:
        with pytest.raises(InvalidParameterError, match="^x must be "):
            _check_range("x", value, **kwargs)


def test_check_range_message_and_type() -> None:
    with pytest.raises(InvalidParameterError, match=r"^p must be in \(0, 1\], got 0$"):
        _check_range("p", 0, 0, 1, low_inclusive=False)
    with pytest.raises(ParameterTypeError, match="p must be a number, got 'x'"):
        _check_range("p", "x", 0, 1)


def test_check_positive_and_positive_int() -> None:
    assert _check_positive("lr", 1e-3) == 1e-3
    assert _check_positive("decay", 0, allow_zero=True) == 0
    for bad in (0, -1.0, "1", True):
        with pytest.raises(InvalidParameterError, match="lr must be positive"):
            _check_positive("lr", bad)
    assert _check_positive_int("n", np.int32(2)) == 2
    assert _check_positive_int("n", None, allow_none=True) is None
    assert _check_positive_int("n", 0, allow_zero=True) == 0
    for bad in (0, 1.0, True, "2"):
        with pytest.raises(InvalidParameterError, match="n must be a positive integer"):
            _check_positive_int("n", bad)
    with pytest.raises(InvalidParameterError,
                       match=r"n must be a non-negative integer \(0: none\), got -1"):
        _check_positive_int("n", -1, allow_zero=True, extra=" (0: none)")
