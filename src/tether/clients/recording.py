"""Command-shell recordings as asciicast v2 (one JSON header line, then one
``[seconds, "o"|"i", text]`` line per chunk), streamed to a temporary file
in the site's recordings store and kept content-addressed when the session
ends (SITE-03). When the store is a bucket (OPS-06) the lines are spooled to
an unnamed temporary file instead, so the relay never waits on the network,
and go up (streamed) when the session ends, on the hub's worker thread."""

from __future__ import annotations

import codecs
import json
import tempfile
import time



class AsciicastRecorder:
    def __init__(self, store, cols: int, rows: int, title: str):
        self.started = time.time()
        self._t0 = time.monotonic()
        self._store = store
        self._spool = tempfile.SpooledTemporaryFile(max_size=1 << 20) if store.blocking else None
        self._w = self._spool or store.writer(field="recording")
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
        if self._spool is None:
            sha, size = self._w.finish()
            return sha, size, duration
        spool, self._spool = self._spool, None
        try:
            spool.seek(0)
            sha, size = self._store.put_stream(iter(lambda: spool.read(1 << 20), b""), None, "recording")
        finally:
            spool.close()
        return sha, size, duration

    def abort(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        else:
            self._w.abort()
