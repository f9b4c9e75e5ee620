"""Where stase keeps what it computes once: the one user cache folder rule.

``user_cache_dir(*parts)``: ``$STASE_CACHE`` when set, else ``$XDG_CACHE_HOME/stase``, else
``~/.cache/stase`` (the XDG base-directory rule), with ``parts`` appended.  Everything cached —
the sentence encoder's ONNX export and embeddings, room responses, the realistic benchmark's
renders — lives under it, so one variable moves (or clears) all of it.  Nothing is created here;
writers create their folder when they write (atomically, :mod:`stase.core.audio_io`).
"""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """The user cache folder of stase, with ``parts`` appended (see the module's rule)."""
    if os.environ.get("STASE_CACHE"):
        base = Path(os.environ["STASE_CACHE"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(xdg) / "stase"
    return base.joinpath(*parts)
