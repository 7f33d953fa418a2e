"""``bci paradigm mi``: the toolkit runs the cue paradigm itself (no stimulus program)."""

from __future__ import annotations

import json

import typer

from bci_toolkit.cli._common import check_number

#: Paradigms ``bci paradigm`` runs.
PARADIGMS = ("mi",)


def register(app: typer.Typer) -> None:
    """Attach ``paradigm`` to the root app."""

    @app.command("paradigm")
    def paradigm(
        kind: str = typer.Argument(..., help="Paradigm: mi (motor imagery, Graz timing)."),
        classes: str = typer.Option("left,right", "--classes",
                                    help="Cue labels, e.g. left,right or left,right,feet."),
        trials: int = typer.Option(40, "--trials", help="Trials in all (balanced classes)."),
        name: str = typer.Option("bci-cues", "--name", help="Name of the LSL marker stream."),
        fixation: float = typer.Option(2.0, "--fixation", help="Seconds of fixation cross "
                                                              "before each cue."),
        imagery: float = typer.Option(4.0, "--imagery", help="Seconds from cue to the end of "
                                                            "imagery (the cue stays on)."),
        rest: float = typer.Option(1.5, "--rest", help="Shortest rest after imagery (s)."),
        jitter: float = typer.Option(1.0, "--jitter", help="Rest is longer by a uniform "
                                                          "random [0, JITTER) s."),
        seed: int = typer.Option(None, "--seed", help="Seed of the class order and jitter "
                                                      "(default: a new schedule each run)."),
        start_delay: float = typer.Option(3.0, "--start-delay",
                                          help="Seconds before the first trial."),
        wait_consumers: float = typer.Option(0.0, "--wait-consumers",
                                             help="Wait up to this long (s) for a recorder "
                                                  "or page to connect before starting."),
        as_json: bool = typer.Option(False, "--json", help="Print what was sent as JSON."),
    ) -> None:
        """Run a cue paradigm: push Graz-timed cues on an LSL marker stream."""
        from bci_toolkit.cli.live_cmd import _sigterm_as_interrupt
        from bci_toolkit.errors import UnknownNameError
        from bci_toolkit.paradigm import FIXATION, REST, GrazTiming, graz_schedule, run_schedule

        if kind not in PARADIGMS:
            raise UnknownNameError(f"paradigm {kind!r}: expected one of {', '.join(PARADIGMS)}")
        check_number(trials, "--trials", minimum=1, maximum=2000)
        for value, option in ((fixation, "--fixation"), (rest, "--rest"),
                              (jitter, "--jitter")):
            check_number(value, option, minimum=0, maximum=60, unit=" s")
        check_number(imagery, "--imagery", minimum=0.5, maximum=60, unit=" s")
        check_number(start_delay, "--start-delay", minimum=0, maximum=3600, unit=" s")
        check_number(wait_consumers, "--wait-consumers", minimum=0, maximum=3600, unit=" s")
        labels = [c.strip() for c in classes.split(",") if c.strip()]
        timing = GrazTiming(fixation, imagery, rest, jitter)
        events = graz_schedule(labels, trials, timing, seed=seed)
        total = events[-1].onset + rest + jitter / 2
        typer.echo(f"paradigm mi: {trials} trials of {', '.join(labels)} on marker stream "
                   f"{name!r} (about {total / 60:.1f} min); first trial in "
                   f"{start_delay:g} s; Ctrl-C to stop", err=True)
        _sigterm_as_interrupt()

        def progress(event) -> None:
            if event.label not in (FIXATION, REST):
                typer.echo(f"trial {event.trial + 1}/{trials}: {event.label}", err=True)

        run = run_schedule(events, name, start_delay=start_delay,
                           wait_consumers=wait_consumers, progress=progress)
        typer.echo(f"paradigm {run.ended_by}: {run.n_trials} trials, {len(run.sent)} "
                   f"markers on {name!r}; latest marker {run.max_late_ms:.2f} ms after its "
                   "time", err=True)
        if as_json:
            typer.echo(json.dumps({"name": name, "ended_by": run.ended_by,
                                   "n_trials": run.n_trials, "max_late_ms": run.max_late_ms,
                                   "markers": [{"time": pushed, "due": due, "label": label,
                                                "trial": trial}
                                               for due, pushed, label, trial in run.sent]}))
