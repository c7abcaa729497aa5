"""A real Prometheus server (Debian's ``prometheus``) for the metrics tests:
a generated configuration, a temporary data directory, a loopback address
from this package's range (127.0.32.1), and its HTTP query API."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import free_port, stop_process, wait_for

HOST = "127.0.32.1"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def require() -> None:
    if not Path(PROMETHEUS).exists() or not Path(PROMTOOL).exists():
        pytest.skip("prometheus is not installed (run scripts/install-system-deps as root)")


class Prometheus:
    def __init__(self, workdir: Path, scrape_configs: list[dict], rule_files: list[str] = ()):
        require()
        self.dir = workdir
        self.port = free_port(HOST)
        self.url = f"http://{HOST}:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": list(rule_files), "scrape_configs": scrape_configs}))
        self.log = open(workdir / "prometheus.log", "ab")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={self.config}",
                                      f"--storage.tsdb.path={workdir / 'data'}",
                                      f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=60, what=lambda: "prometheus ready: " + self.logs())

    def logs(self) -> str:
        return (self.dir / "prometheus.log").read_text(errors="replace")[-3000:]

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.logs()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params) -> dict:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The instant vector of ``expr`` now: [{"metric": {...labels}, "value": [time, "text"]}]."""
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        res = self.query(expr)
        assert len(res) <= 1, res
        return float(res[0]["value"][1]) if res else None

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
