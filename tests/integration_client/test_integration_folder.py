"""IC-03 into a local folder: ``tether-integration sync --once`` against a real
appliance pulls a backup, session reports and recordings; killed with SIGKILL
in the middle of a recording's download it leaves no partial file in the
folder and the next pass resumes the download by Range, with no duplicate;
``status --json`` says what was pulled and what failed; an appliance that
goes away mid-life (stopped, restarted) is a failure recorded and then
caught up."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest

from tests.integration_client.conftest import files, integration


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.req("IC-03")
def test_pull_killed_mid_download_resumes_without_duplicates(site_env, tmp_path):
    out = tmp_path / "archive"
    cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "state")
    ended = [site_env.session(customer_name=f"ended {i}") for i in range(3)]
    open_ = site_env.session(customer_name="still open")
    big, big_sha = site_env.recording(ended[0]["lsid"], "session", 3 << 20)
    shell, shell_sha = site_env.recording(ended[1]["lsid"], "command_shell", 200_000)
    for s in ended:
        site_env.end(s["lsid"])

    # killed (SIGKILL) after 10 chunks of 64 KiB of the big recording
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions", "--kind", "recordings",
                    env={"TETHER_CRASH_AT": "10", "TETHER_CRASH_ONLY": "integration.download.chunk"})
    assert r.returncode == -9, r.stderr
    part = tmp_path / "state" / "partial" / f"recording-{big['id']}.part"
    assert 0 < part.stat().st_size < big["size"]
    assert not any(f.startswith("recordings/") for f in files(out)), files(out)  # nothing partial is visible

    r = integration("--config", str(cfg), "sync", "--once", "--json")
    assert r.returncode == 0, r.stderr
    assert f"recording {big['id']} (session, resuming from byte " in r.stderr, r.stderr
    doc = json.loads(r.stdout)  # progress on stderr, the status after the pass on stdout
    assert doc["pass_failures"] == [] and doc["kinds"]["recordings"]["pulled"] == 2, doc
    assert doc["kinds"]["backups"]["last_success"] is not None, doc
    got = files(out)
    recs = [f for f in got if f.startswith("recordings/")]
    assert sorted(f.rsplit("/", 1)[1] for f in recs) == sorted(
        [f"recording-{big['id']}-session.bin", f"recording-{shell['id']}-command_shell.cast"])
    by_name = {f.rsplit("/", 1)[1]: out / f for f in recs}
    assert _sha(by_name[f"recording-{big['id']}-session.bin"]) == big_sha
    assert _sha(by_name[f"recording-{shell['id']}-command_shell.cast"]) == shell_sha
    sessions = [f for f in got if f.startswith("sessions/")]
    lsids = {json.loads((out / f).read_text())["lsid"] for f in sessions}
    assert {s["lsid"] for s in ended} <= lsids and open_["lsid"] not in lsids
    assert len(sessions) == len(lsids)
    report = json.loads((out / next(f for f in sessions if ended[0]["lsid"] in f)).read_text())
    assert [e["type"] for e in report["events"]] == ["session.start", "session.end"]
    assert report["recordings"][0]["sha256"] == big_sha
    backups = [f for f in got if f.startswith("backups/")]
    assert len(backups) == 1 and backups[0].endswith(".nsb") and (out / backups[0]).stat().st_size > 0
    assert not (tmp_path / "state" / "partial").exists() or not any((tmp_path / "state" / "partial").iterdir())

    # the open session is written once it ends; a pass with nothing new writes nothing again
    site_env.end(open_["lsid"])
    before = set(files(out))
    assert integration("--config", str(cfg), "sync", "--once", "--kind", "sessions",
                       "--kind", "recordings").returncode == 0
    new = set(files(out)) - before
    assert [f for f in new if f.startswith("sessions/")] == [
        f for f in new if open_["lsid"] in f] and len([f for f in new if open_["lsid"] in f]) == 1
    before = files(out)
    assert integration("--config", str(cfg), "sync", "--once", "--kind", "sessions",
                       "--kind", "recordings").returncode == 0
    assert files(out) == before

    st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
    assert st["kinds"]["recordings"]["pulled"] == 2 and st["kinds"]["recordings"]["last_error"] is None
    assert st["kinds"]["sessions"]["pulled"] == len(lsids) + 1 and st["kinds"]["sessions"]["still_open"] == 0
    assert st["kinds"]["backups"]["last_backup"]["key"] == backups[0]
    assert st["site"]["software_version"] and st["kinds"]["sessions"]["next_due"] > st["kinds"]["sessions"]["last_success"]


@pytest.mark.req("IC-03")
def test_an_appliance_gone_away_is_recorded_then_caught_up(site_env, tmp_path):
    out = tmp_path / "archive"
    cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "state")
    assert integration("--config", str(cfg), "sync", "--once", "--kind", "sessions").returncode == 0
    s = site_env.session(customer_name="during the outage")
    site_env.end(s["lsid"])
    site_env.proc.stop()
    try:
        r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions")
        assert r.returncode == 8, r.stderr
        assert "Error: cannot reach" in r.stderr
        st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
        assert "cannot reach" in st["kinds"]["sessions"]["last_error"]["message"]
        assert st["failures"][0]["kind"] == "sessions"
    finally:
        site_env.proc.start()
    site_env.c.close()
    site_env.c = site_env.proc.client()
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions")
    assert r.returncode == 0, r.stderr
    assert sum(s["lsid"] in f for f in files(out)) == 1
    st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
    assert st["kinds"]["sessions"]["last_error"] is None


@pytest.mark.req("IC-03")
def test_retention_over_a_simulated_month_of_daily_backups(site_env, tmp_path):
    """A month of daily passes (the clock injected: each pass's ``now`` is 02:00 UTC of the next day), the
    retention applied after each backup, then ``prune --dry-run`` and ``prune`` with other flags."""
    from tether.integration import config as C
    from tether.integration.cli import one_pass
    from tether.integration.progress import Reporter

    out = tmp_path / "archive"
    cfg_path = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "state",
                               extra="")
    # unprotected backups (asked for explicitly): a password's scrypt costs seconds a backup, 31 times over
    text = cfg_path.read_text().replace(f'password_file = "{site_env.password_file}"', "no_password = true").replace(
        'every = "24h"', 'every = "24h"\nkeep_last = 1\nkeep_daily = 3\nkeep_weekly = 4\nkeep_monthly = 2')
    cfg_path.write_text(text)
    cfg = C.load(cfg_path, {})
    first = datetime.datetime(2026, 11, 5, 2, 0, tzinfo=datetime.timezone.utc)
    for day in range(31):
        t = (first + datetime.timedelta(days=day)).timestamp()
        assert one_pass(cfg, ["backups"], Reporter(tty=False), now=lambda t=t: t) == []
    days = sorted(f.split("-")[-1][:8] for f in files(out) if f.startswith("backups/"))
    # last 1: Dec 5; daily 3: Dec 3-5; weekly 4 (ISO weeks 49, 48, 47, 46): Dec 5, Sun Nov 29, Nov 22, Nov 15;
    # monthly 2: Dec 5, Nov 30
    assert days == ["20261115", "20261122", "20261129", "20261130", "20261203", "20261204", "20261205"]
    r = integration("--config", str(cfg_path), "prune", "--keep-last", "2", "--keep-monthly", "2", "--dry-run",
                    "--keep-daily", "0", "--keep-weekly", "0")
    assert r.returncode == 0, r.stderr
    would = [line.split()[-1] for line in r.stdout.splitlines() if line.startswith("would remove")]
    assert sorted(w.split("-")[-1][:8] for w in would) == ["20261115", "20261122", "20261129", "20261203"]
    assert sorted(f.split("-")[-1][:8] for f in files(out) if f.startswith("backups/")) == days  # nothing went
    r = integration("--config", str(cfg_path), "prune", "--keep-last", "2", "--keep-monthly", "2",
                    "--keep-daily", "0", "--keep-weekly", "0", "--json")
    assert json.loads(r.stdout)["remove"] == sorted(would, reverse=True)
    assert sorted(f.split("-")[-1][:8] for f in files(out) if f.startswith("backups/")) == \
        ["20261130", "20261204", "20261205"]


@pytest.mark.req("IC-03")
def test_run_follows_the_schedules_and_shows_bars_on_a_terminal(site_env, tmp_path):
    import os
    import pty
    import signal
    import subprocess
    import threading

    from tests.helpers import wait_for
    from tests.integration_client.conftest import INTEGRATION

    out = tmp_path / "archive"
    cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "state")
    cfg.write_text(cfg.read_text().replace('every = "24h"', 'every = "off"').replace('every = "1h"', 'every = "1s"'))
    s1 = site_env.session(customer_name="run 1")
    rec, _ = site_env.recording(s1["lsid"], "session", 1 << 20)
    site_env.end(s1["lsid"])
    master, slave = pty.openpty()  # stderr a terminal: Rich progress bars
    p = subprocess.Popen([INTEGRATION, "--config", str(cfg), "run"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = bytearray()

    def drain() -> None:  # read the terminal as it goes, so that a full pty buffer never blocks the program
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(s1["lsid"] in f for f in files(out)), timeout=60, what="the first session pulled")
        s2 = site_env.session(customer_name="run 2")
        site_env.end(s2["lsid"])
        wait_for(lambda: any(s2["lsid"] in f for f in files(out)), timeout=60, what="the next pass, on schedule")
        assert any(f.endswith(f"recording-{rec['id']}-session.bin") for f in files(out))
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        reader.join(10)
        os.close(master)
    text = bytes(seen).decode(errors="replace")
    assert "━" in text and "following the schedules" in text and "stopped" in text, text[-2000:]


@pytest.mark.req("IC-03")
def test_a_network_cut_mid_download_resumes_by_range(site_env, tmp_path):
    from urllib.parse import urlsplit

    from tests.tcpproxy import Proxy

    out = tmp_path / "archive"
    u = urlsplit(site_env.proc.url)
    proxy = Proxy((u.hostname, u.port), host="127.0.34.4")
    try:
        cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "state")
        cfg.write_text(cfg.read_text().replace(site_env.proc.url, proxy.url()))
        # start after everything already recorded (pulled directly, not through the forwarder), so that the
        # passes below download only the new recording
        assert integration("--config", str(cfg), "--site-url", site_env.proc.url, "sync", "--once",
                           "--kind", "recordings").returncode == 0
        s = site_env.session(customer_name="cut")
        rec, sha = site_env.recording(s["lsid"], "session", 3 << 20)
        proxy.cut_after(1 << 20)  # the connection dies about 1 MiB into the download
        r = integration("--config", str(cfg), "sync", "--once", "--kind", "recordings")
        assert r.returncode == 8, r.stderr
        assert "the connection broke after" in r.stderr and "the next pass resumes from there" in r.stderr
        part = tmp_path / "state" / "partial" / f"recording-{rec['id']}.part"
        got = part.stat().st_size
        assert 0 < got < rec["size"]
        assert not any(str(rec["id"]) in f for f in files(out))
        proxy.heal()
        r = integration("--config", str(cfg), "sync", "--once", "--kind", "recordings")
        assert r.returncode == 0, r.stderr
        assert f"resuming from byte {got}" in r.stderr
        [path] = [out / f for f in files(out) if f.endswith(f"recording-{rec['id']}-session.bin")]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    finally:
        proxy.close()
