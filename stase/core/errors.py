"""Errors funnel into two kinds (STYLE.md rule 6).

``InputError`` is a user mistake (bad file, wrong rate, NaN, unknown id); its message says what was
wrong and what is accepted.  ``StaseError`` wraps a backend failure with context
(``raise StaseError("...") from exc``).
"""


class StaseError(Exception):
    """A backend failed (model, audio device, DAW, file system)."""


class InputError(StaseError, ValueError):
    """The user gave something we cannot use; the message says what is accepted."""
