"""Cue paradigms the toolkit runs itself, for labs without a stimulus program.

:func:`~bci_toolkit.paradigm.schedule.graz_schedule` lays out a motor-imagery calibration
with Graz timing (fixation, cue, imagery, jittered rest);
:func:`~bci_toolkit.paradigm.runner.run_schedule` pushes its markers on a real LSL marker
stream at their times. Recording, calibration and the live session read that stream like
any other cue stream, and the participant's feedback page (``/feedback?cue=1`` of the
monitor) shows each cue full screen. ``bci paradigm mi`` runs it from the command line.
"""

from bci_toolkit.paradigm.runner import ParadigmRun, run_schedule
from bci_toolkit.paradigm.schedule import FIXATION, REST, CueEvent, GrazTiming, graz_schedule

__all__ = ["FIXATION", "REST", "CueEvent", "GrazTiming", "ParadigmRun", "graz_schedule",
           "run_schedule"]
