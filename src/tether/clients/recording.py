"""Command-shell recordings as asciicast v2 (one JSON header line, then one
``[seconds, "o"|"i", text]`` line per chunk), streamed to a temporary file
in the site's recordings store and kept content-addressed when the session
ends (SITE-03)."""

from __future__ import annotations

import codecs
import json
import time

from tether.site.blobs import BlobStore


class AsciicastRecorder:
    def __init__(self, store: BlobStore, cols: int, rows: int, title: str):
        self.started = time.time()
        self._t0 = time.monotonic()
        self._w = store.writer(field="recording")
        self._dec = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                     "i": codecs.getincrementaldecoder("utf-8")("replace")}
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(self.started), "title": title,
                  "env": {"TERM": "xterm-256color"}}
        self._line(header)

    def _line(self, obj) -> None:
        self._w.write(json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n")

    def write(self, stream: str, data: bytes) -> None:
        text = self._dec[stream].decode(data)
        if text:
            self._line([round(time.monotonic() - self._t0, 6), stream, text])

    def resize(self, cols: int, rows: int) -> None:
        self._line([round(time.monotonic() - self._t0, 6), "r", f"{cols}x{rows}"])

    def finish(self) -> tuple[str, int, float]:
        """(sha256, size, duration seconds) of the stored recording."""
        duration = time.monotonic() - self._t0
        sha, size = self._w.finish()
        return sha, size, duration

    def abort(self) -> None:
        self._w.abort()
