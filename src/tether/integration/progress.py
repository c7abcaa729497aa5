"""Progress as the user sees it: Rich progress bars when stderr is a
terminal, plain lines otherwise (a service's journal, a scheduled task's log,
a pipe): one line when an item starts and one when it is done."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator


class Reporter:
    def __init__(self, tty: bool | None = None):
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._rich = None
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=Console(stderr=True), transient=False)

    def line(self, text: str) -> None:
        if self._rich is not None:
            self._rich.console.print(text)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    @contextmanager
    def item(self, label: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
        if self._rich is None:
            self.line(f"{label} ...")
            seen = [0]

            def update(done: int, of: int) -> None:
                seen[0] = done

            yield update
            self.line(f"{label}: done ({seen[0]} bytes)")
            return
        with self._rich:
            task = self._rich.add_task(label, total=total or None)

            def update(done: int, of: int) -> None:
                self._rich.update(task, completed=done, total=of or None)

            yield update
