"""Which annotation texts survive anonymisation: exact strings, never prefixes.

An annotation is kept only when its whole text is

- a key of the caller's event mapping (``--events 'T1=left'``, ``--keep-annotation``),
- one of :data:`ALLOWED`, an explicit list of generic labels and of the event codes of the
  datasets the toolkit ships, or
- a *code*: 1 to 5 ASCII digits (GDF and BCI2000 stimulus codes such as ``769``), or a
  BrainVision ``Stimulus/S 12`` / ``Response/R 3`` marker. These grammars hold digits
  only, so they cannot carry a name.

Matching by prefix is what let ``BAD_Vandermolen_blink`` through: a prefix keeps the rest
of the text. A ``BAD...`` annotation that is not allowed is therefore *relabelled* to the
generic ``BAD`` (so that MNE still rejects the span it marks) and nothing of its text is
kept; every other text is removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bci_toolkit.privacy.policy import PrivacyPolicy

# Generic labels MNE writes or reads, class names of the toolkit's pipelines, and the event
# codes of the shipped dataset manifests (tests check the manifests stay covered).
ALLOWED = frozenset({
    "BAD", "EDGE", "BAD_ACQ_SKIP", "BAD boundary", "EDGE boundary", "boundary",
    "T0", "T1", "T2",
    "rest", "left", "right", "left_hand", "right_hand", "hands", "feet", "tongue",
    "target", "nontarget",
})
BAD_LABEL = "BAD"
_CODE_RE = re.compile(r"\d{1,5}|Stimulus/S\s{0,3}\d{1,3}|Response/R\s{0,3}\d{1,3}", re.ASCII)
# A text that marks a bad span: "BAD", then a separator, then anything.
_BAD_RE = re.compile(r"bad[\s_\-:]", re.IGNORECASE)


@dataclass(frozen=True)
class AnnotationRule:
    """Decide, text by text, what an anonymised file may keep.

    Parameters
    ----------
    keep_all : bool
        Keep every text verbatim (``policy.keep_annotations``, an explicit opt-in).
    events : frozenset of str
        Exact texts to keep besides :data:`ALLOWED` (the event mapping's keys).
    """

    keep_all: bool = False
    events: frozenset[str] = frozenset()

    @classmethod
    def from_policy(cls, policy: PrivacyPolicy | None = None,
                    events: Iterable[str] | None = None) -> AnnotationRule:
        """The rule of ``policy`` plus the exact texts in ``events``."""
        keep_all = bool(policy and policy.keep_annotations)
        return cls(keep_all, frozenset(str(e) for e in (events or ())))

    def allowed(self, text: str) -> bool:
        """Whether ``text`` may stay as it is."""
        return (self.keep_all or text in ALLOWED or text in self.events
                or _CODE_RE.fullmatch(text) is not None)

    def apply(self, text: str) -> str | None:
        """``text`` itself, the generic ``BAD`` label, or None (remove it)."""
        if self.allowed(text):
            return text
        if _BAD_RE.match(text):
            return BAD_LABEL
        return None


def keep_annotation(description: str, policy: PrivacyPolicy,
                    events: Iterable[str] | None = None) -> bool:
    """Whether ``description`` may stay verbatim in a file anonymised under ``policy``."""
    return AnnotationRule.from_policy(policy, events).allowed(description)
