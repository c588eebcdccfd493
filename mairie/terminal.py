"""The operators' terminal: a Rich console that never lets stored text drive the terminal.

Whatever the database holds (a name typed before the text policy existed, an import from elsewhere), every
string printed goes through `models.text.for_terminal`: control characters (ESC sequences), bidi controls
(U+202E) and line separators are shown as visible escapes. Lines are never wrapped (`soft_wrap`), so that
a link printed stays one piece a terminal can open.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from models.text import for_terminal


class SafeConsole(Console):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("soft_wrap", True)
        super().__init__(**kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [for_terminal(o, keep_newlines=True) if isinstance(o, str) else o for o in objects]
        super().print(*safe, **kwargs)
