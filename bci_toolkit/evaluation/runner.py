"""Run protocol jobs through joblib: local processes (``n_jobs``) or a Dask cluster.

Workers run with one BLAS thread each (:func:`limit_threads`): joblib already runs one
worker per core, and nested thread pools only make them compete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

__all__ = ["Runner", "limit_threads"]


def limit_threads() -> None:
    """Limit BLAS/OpenMP pools of this process to ``$BCI_WORKER_THREADS`` (default 1)."""
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        if int(os.environ.get("BCI_WORKER_THREADS", "1")) > 0:
            threadpool_limits(int(os.environ.get("BCI_WORKER_THREADS", "1")))


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    limit_threads()
    return fn(*args)


class Runner:
    """Parallel map over jobs, as a context manager holding the joblib backend.

    Parameters
    ----------
    n_jobs : int
        Local worker processes (with ``scheduler``: 1 means one per Dask worker).
    scheduler : str | None
        Address of a Dask scheduler (``tcp://host:8786``).
    progress : bool
        Show progress bars.

    Examples
    --------
    >>> with Runner(n_jobs=2) as runner:                       # doctest: +SKIP
    ...     results = list(runner.map(job, [(1,), (2,)], desc="subjects"))
    """

    def __init__(self, n_jobs: int = 1, scheduler: str | None = None,
                 progress: bool = True) -> None:
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.progress = progress
        self._stack: contextlib.ExitStack | None = None
        self._effective_jobs = n_jobs

    def __enter__(self) -> Runner:
        import joblib

        self._stack = contextlib.ExitStack()
        if self.scheduler:
            from distributed import Client

            client = self._stack.enter_context(Client(self.scheduler, timeout="30s"))
            self._stack.enter_context(joblib.parallel_config("dask"))
            self._effective_jobs = (max(len(client.scheduler_info()["workers"]), 1)
                                    if self.n_jobs == 1 else self.n_jobs)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def map(self, fn: Callable[..., Any], args: Iterable[tuple[Any, ...]], *,
            desc: str = "") -> Iterator[Any]:
        """``fn(*a)`` for each ``a`` in ``args``, in completion order."""
        import joblib
        from tqdm.auto import tqdm

        jobs = [joblib.delayed(_call)(fn, tuple(a)) for a in args]
        parallel = joblib.Parallel(n_jobs=self._effective_jobs, return_as="generator_unordered")
        yield from tqdm(parallel(jobs), total=len(jobs), desc=desc,
                        disable=None if self.progress else True)
