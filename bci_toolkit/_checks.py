"""Parameter checks shared by the toolkit, in the style of MNE-Python's ``_check_option``.

Every helper raises an error that is both a :class:`~bci_toolkit.errors.BCIError` (the
command line prints it on one line) and the built-in exception scikit-learn expects from
an estimator given a bad parameter (:class:`ValueError`, or :class:`TypeError` for a
value of the wrong type), so ``pytest.raises(ValueError)`` and scikit-learn's checks see
the usual exception types. Messages name the parameter, what it accepts and what it got::

    lr must be positive, got -1.0
    device must be one of ['auto', 'cpu', 'cuda'] (or 'cuda:N'), got 'tpu'
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from bci_toolkit.errors import BCIError, EvaluationError, UnknownNameError

__all__ = [
    "InvalidParameterError",
    "ParameterTypeError",
    "TrainingDataError",
    "_check_name",
    "_check_option",
    "_check_positive",
    "_check_positive_int",
    "_check_range",
    "_validate_type",
]


class InvalidParameterError(BCIError, ValueError):
    """A parameter has a value outside what it accepts."""


class ParameterTypeError(InvalidParameterError, TypeError):
    """A parameter has a value of the wrong type.

    Also a :class:`ValueError`, like scikit-learn's own ``InvalidParameterError``: callers
    catching ``ValueError`` for "bad parameter" see wrong types too.
    """


class TrainingDataError(EvaluationError, ValueError):
    """Training data a decoder cannot learn from (one class, too few trials).

    A :class:`ValueError` too, which is what scikit-learn expects from ``fit`` in that case.
    """


# Names accepted by _validate_type in place of classes; bools are not "int" (True is an
# int to Python, never a count to a user).
_TYPE_ALIASES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((numbers.Integral,), "an integer"),
    "numeric": ((numbers.Real,), "a number"),
    "str": ((str,), "a string"),
    "bool": ((bool, np.bool_), "True or False"),
    "path-like": ((str, os.PathLike), "a path"),
}


def _validate_type(item: Any, types: Any, item_name: str, type_name: str | None = None
                   ) -> Any:
    """Raise :class:`ParameterTypeError` unless ``item`` is an instance of ``types``.

    Parameters
    ----------
    item : object
        The value to check.
    types : type | str | None | tuple
        Classes, ``None`` (for ``None`` itself) or aliases: ``"int"`` (integers, not
        bools), ``"numeric"`` (real numbers, not bools), ``"str"``, ``"bool"``,
        ``"path-like"``.
    item_name : str
        Parameter name used in the message.
    type_name : str | None
        What the message says is expected; built from ``types`` when omitted.

    Returns
    -------
    item
        Unchanged, so the call can be used inline.
    """
    wanted = types if isinstance(types, tuple) else (types,)
    classes: list[type] = []
    names: list[str] = []
    numeric_alias = False
    for t in wanted:
        if t is None:
            classes.append(type(None))
            names.append("None")
        elif isinstance(t, str):
            if t not in _TYPE_ALIASES:
                raise ValueError(f"_validate_type: unknown type alias {t!r}")
            classes.extend(_TYPE_ALIASES[t][0])
            names.append(_TYPE_ALIASES[t][1])
            numeric_alias = numeric_alias or t in ("int", "numeric")
        else:
            classes.append(t)
            names.append(t.__name__)
    is_bool = isinstance(item, (bool, np.bool_))
    ok = isinstance(item, tuple(classes)) and not (
        is_bool and numeric_alias and bool not in classes and np.bool_ not in classes)
    if not ok:
        expected = type_name or " or ".join(names)
        raise ParameterTypeError(f"{item_name} must be {expected}, got {item!r}")
    return item


def _check_option(parameter: str, value: Any, allowed_values: Iterable[Any],
                  extra: str = "") -> Any:
    """Raise :class:`InvalidParameterError` unless ``value`` is one of ``allowed_values``.

    Parameters
    ----------
    parameter : str
        Parameter name used in the message.
    value : object
        The value to check.
    allowed_values : iterable
        Accepted values.
    extra : str
        Appended after the list of accepted values (e.g. ``" (or 'cuda:N')"``).

    Returns
    -------
    value
        Unchanged.
    """
    allowed = list(allowed_values)
    if not any(_same(value, a) for a in allowed):
        raise InvalidParameterError(
            f"{parameter} must be one of {allowed}{extra}, got {value!r}")
    return value


def _check_name(kind: str, name: Any, known: Iterable[str], *, owner: str = "",
                shown: str | None = None) -> Any:
    """Raise :class:`~bci_toolkit.errors.UnknownNameError` unless ``name`` is in ``known``.

    For names looked up in a registry (datasets, protocols, decoders, a dataset's
    tasks...). The message reads ``unknown <kind> 'name'; expected one of [...]``, or
    ``<owner> has no <kind> 'name'; expected one of [...]``.

    Parameters
    ----------
    kind : str
        What the name names, e.g. ``"dataset"``.
    name : object
        The name to check.
    known : iterable of str
        The registered names, in the order the message lists them.
    owner : str
        What holds the names, e.g. ``"dataset 'eegbci'"``; none for a global registry.
    shown : str | None
        How the message shows ``name``; default ``repr(name)``. Give a bounded repr
        (:func:`bci_toolkit.untrusted.short_repr`) for untrusted text.

    Returns
    -------
    name
        Unchanged.
    """
    names = list(known)
    if any(_same(name, n) for n in names):
        return name
    what = f"{owner} has no {kind}" if owner else f"unknown {kind}"
    raise UnknownNameError(f"{what} {shown or repr(name)}; expected one of {names}")


def _same(value: Any, allowed: Any) -> bool:
    # True == 1 to Python, never to a user; arrays and other odd values simply differ.
    if isinstance(value, (bool, np.bool_)) != isinstance(allowed, (bool, np.bool_)):
        return False
    try:
        return bool(value == allowed)
    except (TypeError, ValueError):
        return False


def _check_range(parameter: str, value: Any, low: float | None = None,
                 high: float | None = None, *, low_inclusive: bool = True,
                 high_inclusive: bool = True, allow_none: bool = False) -> Any:
    """Raise unless ``value`` is a real number within ``[low, high]`` (bounds optional).

    ``low_inclusive``/``high_inclusive`` make a bound open. Non-numbers raise
    :class:`ParameterTypeError`; numbers out of range :class:`InvalidParameterError`.
    """
    if value is None and allow_none:
        return value
    kind = "a number" + (" or None" if allow_none else "")
    _validate_type(value, "numeric", parameter, kind)
    v = float(value)
    ok = not np.isnan(v)
    if low is not None:
        ok = ok and (v >= low if low_inclusive else v > low)
    if high is not None:
        ok = ok and (v <= high if high_inclusive else v < high)
    if not ok:
        raise InvalidParameterError(
            f"{parameter} must be {_interval(low, high, low_inclusive, high_inclusive)}"
            f"{' or None' if allow_none else ''}, got {value!r}")
    return value


def _interval(low: float | None, high: float | None, low_inclusive: bool,
              high_inclusive: bool) -> str:
    if low is not None and high is not None:
        return (f"in {'[' if low_inclusive else '('}{_bound(low)}, {_bound(high)}"
                f"{']' if high_inclusive else ')'}")
    if low is not None:
        return f"{'>=' if low_inclusive else '>'} {_bound(low)}"
    if high is not None:
        return f"{'<=' if high_inclusive else '<'} {_bound(high)}"
    return "a number"


def _bound(x: float) -> str:
    # Whole bounds in full (a segment size of 67108864 bytes, not 6.71089e+07).
    if np.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def _check_positive(parameter: str, value: Any, *, allow_zero: bool = False,
                    allow_none: bool = False) -> Any:
    """Raise unless ``value`` is a positive number (``>= 0`` with ``allow_zero``)."""
    if value is None and allow_none:
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not (
            value >= 0 if allow_zero else value > 0):
        what = "a non-negative number" if allow_zero else "positive"
        raise InvalidParameterError(
            f"{parameter} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return value


def _check_positive_int(parameter: str, value: Any, *, allow_zero: bool = False,
                        allow_none: bool = False, extra: str = "") -> Any:
    """Raise unless ``value`` is a positive integer (``>= 0`` with ``allow_zero``).

    Bools are refused (``True`` is not a count).
    """
    if value is None and allow_none:
        return value
    if (not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_))
            or value < (0 if allow_zero else 1)):
        what = "a non-negative integer" if allow_zero else "a positive integer"
        raise InvalidParameterError(
            f"{parameter} must be {what}{' or None' if allow_none else ''}{extra}, "
            f"got {value!r}")
    return value
