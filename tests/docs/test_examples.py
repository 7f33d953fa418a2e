"""Every code example in the docs and the README is checked by running it.

* ``python`` blocks, and shell blocks marked ``<!-- example: run -->``, run page by page
  in document order, in a fresh interpreter whose working folder is a temporary folder:
  later blocks of a page see the names and files of earlier ones, as a reader who pastes
  them in order would.
* every other ``bash``/``sh`` block: each ``bci …`` command is parsed by the real command-line
  parser (unknown options or bad values fail here), and each ``benchmarks/*.py``
  command must name a script that exists and options it declares. Commands whose
  full run takes minutes (the quick start, the benchmarks) are run by CI's
  ``make quickstart`` and by their authors, not here.
* A block preceded by ``<!-- example: no-run (why) -->`` is only compiled: used for
  examples that need a peer this machine cannot provide (a KMS, a browser page).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_FENCE = re.compile(r"(<!--\s*example:\s*(?P<mark>[\w-]+)[^>]*-->\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```",
                    re.S)


def _blocks(page: Path) -> list[tuple[str, str, str]]:
    """``(language, body, mark)`` of each fenced block of ``page``."""
    return [(m["lang"], m["body"], m["mark"] or "") for m in _FENCE.finditer(page.read_text())]


def _pages_with(langs: tuple[str, ...]) -> list[Path]:
    return [p for p in PAGES if any(lang in langs for lang, _, _ in _blocks(p))]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["BCI_DOCS_ROOT"] = str(ROOT)
    env["MPLBACKEND"] = "Agg"
    env["HOME"] = str(tmp)  # nothing an example writes lands in the real home folder
    return env


_DRIVER = """
import subprocess, sys
blocks = {blocks!r}
namespace = {{"__name__": "__main__"}}
for i, (lang, body) in enumerate(blocks):
    print(f"--- block {{i}} ({{lang}})", flush=True)
    if lang == "python":
        exec(compile(body, f"{page}[{{i}}]", "exec"), namespace)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", body], check=True)
"""


def _runnable(page: Path) -> list[tuple[str, str]]:
    """The blocks of ``page`` that run, in order: python ones and shell ones marked ``run``."""
    out = []
    for lang, body, mark in _blocks(page):
        if lang == "python":
            compile(body, page.name, "exec")  # every block at least compiles
            if mark != "no-run":
                out.append((lang, body))
        elif lang in ("bash", "sh") and mark == "run":
            out.append((lang, body))
    return out


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path) -> None:
    driver = tmp_path / "run_examples.py"
    driver.write_text(_DRIVER.format(blocks=_runnable(page), page=page.name))
    env = _env(tmp_path)
    # `bci` in a shell example is the toolkit's own entry point.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run([sys.executable, str(driver)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{page.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _commands(body: str) -> list[str]:
    """Logical command lines of a shell block (continuations joined, comments dropped)."""
    out, current = [], ""
    for line in body.splitlines():
        stripped = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            out.append(current.strip())
        current = ""
    return out


def _shell_commands() -> list[tuple[str, str]]:
    """``(page, command)`` for every simple command of every shell block."""
    found = []
    for page in PAGES:
        for lang, body, mark in _blocks(page):
            if lang in ("bash", "sh") and mark != "run":  # run blocks are executed instead
                for line in _commands(body):
                    found += [(page.name, part.strip())
                              for part in re.split(r"\s(?:&&|;)\s", line) if part.strip()]
    return found


def _argv(command: str) -> list[str]:
    """The words of ``command`` after environment assignments and ``&``/``|`` tails."""
    command = re.split(r"\s(?:\||&)\s?", command + " ")[0]
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    return words


BCI = [(page, c) for page, c in _shell_commands()
       if _argv(c) and Path(_argv(c)[0]).name == "bci"]
SCRIPTS = [(page, c) for page, c in _shell_commands()
           if any(w.endswith(".py") for w in _argv(c)[:3])]


def _pending(ctx) -> list[str]:
    # The group's not-yet-dispatched words: typer's bundled click keeps the sub-command
    # name apart from the rest of the words.
    return list(getattr(ctx, "_protected_args", getattr(ctx, "protected_args", []))) + ctx.args


@pytest.mark.parametrize(("page", "command"), BCI, ids=[f"{p}:{c[:40]}" for p, c in BCI])
def test_bci_commands_parse(page: str, command: str) -> None:
    import typer

    from bci_toolkit.cli.main import app

    group = typer.main.get_command(app)
    args = _argv(command)[1:]
    ctx = group.make_context("bci", list(args), resilient_parsing=False)
    # Walk down to the sub-command and let click parse its options for real.
    while hasattr(ctx.command, "get_command") and _pending(ctx):
        name, *rest = _pending(ctx)
        sub = ctx.command.get_command(ctx, name)
        assert sub is not None, f"{page}: unknown command {name!r} in `{command}`"
        ctx = sub.make_context(name, rest, parent=ctx)
    assert not ctx.args, f"{page}: unexpected arguments {ctx.args} in `{command}`"


@pytest.mark.parametrize(("page", "command"), SCRIPTS, ids=[f"{p}:{c[:40]}" for p, c in SCRIPTS])
def test_benchmark_commands_name_real_options(page: str, command: str) -> None:
    words = _argv(command)
    script = next(w for w in words if w.endswith(".py"))
    path = ROOT / script if (ROOT / script).exists() else ROOT / "benchmarks" / Path(script).name
    assert path.is_file(), f"{page}: `{command}` names a missing script {script}"
    source = path.read_text()
    for opt in (w.split("=")[0] for w in words if w.startswith("--")):
        assert f'"{opt}"' in source, f"{page}: {script} has no option {opt}"
