"""Progress bars for restoring, evaluating and tiling: tqdm on stderr, shown only where someone watches."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["Progress"]

T = TypeVar("T")


class Progress:
    """tqdm bars named ``description`` counting ``unit``s, shown when ``enabled`` (default: when stderr is a
    terminal) and there is more than one step. ``close()`` closes the bars ``counter`` opened."""

    def __init__(self, description: str, *, unit: str = "image", enabled: bool | None = None) -> None:
        self.description, self.unit = description, unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bars: list[Any] = []

    def _shown(self, total: int | None) -> bool:
        return self.enabled and (total is None or total > 1)

    def __call__(self, items: Iterable[T], total: int | None = -1) -> Iterable[T]:
        """``items`` with a bar (``total``: default ``len(items)``; None when unknown)."""
        total = len(items) if total == -1 else total  # type: ignore[arg-type]
        if not self._shown(total):
            return items
        from tqdm.auto import tqdm

        return tqdm(items, desc=self.description, unit=self.unit, total=total)

    def counter(self, total: int) -> Callable[[], None] | None:
        """A callback that advances a bar of ``total`` steps by one (None when no bar is shown)."""
        if not self._shown(total):
            return None
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=self.description, unit=self.unit, leave=False)
        self._bars.append(bar)
        return lambda: bar.update(1)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars.clear()
