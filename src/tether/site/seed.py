"""Filling a site with realistic generated data, fast (``tether site seed``):
users, teams with members, jumpoints, jump client groups and clients, a year
of session records with events, license usage and team activity, file-store
files of mixed sizes and recordings. Rows go in with bulk ``executemany``
inserts (the change log still records each one); file bytes are streamed to
the content-addressed stores, never held whole in memory. Deterministic for
a given ``seed``."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from tether.core.passwords import hash_password

from . import config_tables as T
from . import history_tables as H
from .tables import users

KINDS = ("support", "support", "support", "jump", "shell", "show_my_screen")
EVENTS = ("chat.message", "screen.share", "file.transfer", "command", "rep.join", "rep.leave", "elevation")
REASONS = ("rep_closed", "customer_closed", "timeout", "transferred")
OSES = ("windows", "windows", "macos", "linux")
REC_KINDS = ("session", "command_shell", "presentation", "show_my_screen")
FIRST = ("Ann", "Bob", "Chen", "Dana", "Eve", "Farid", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mo", "Nia")
LAST = ("Smith", "Jones", "Garcia", "Müller", "Rossi", "Kowalski", "Tanaka", "Okafor", "Silva", "Novak")


@dataclass
class SeedPlan:
    users: int = 50
    teams: int = 5
    jump_clients: int = 200
    sessions: int = 10_000
    events_per_session: int = 4
    files: int = 20
    max_file_mb: float = 20.0
    recordings: int = 20
    recording_mb: float = 5.0
    days: int = 365
    seed: int = 1


def _max_id(c, table) -> int:
    return c.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()


def _stream(rng: random.Random, size: int):
    left = size
    while left > 0:
        n = min(1 << 20, left)
        yield rng.randbytes(n)
        left -= n


def seed(site, plan: SeedPlan, progress: Callable[[str, int, int], None] = lambda *_: None) -> dict:
    rng = random.Random(plan.seed)
    eng: sa.Engine = site.engine
    now = time.time()
    tag = f"s{plan.seed}"
    pw = hash_password("Seeded-pass-1")  # one hash for all: argon2 is deliberately slow
    names = [f"{tag}-{FIRST[i % len(FIRST)].lower()}{i}" for i in range(plan.users)]
    team_names = [f"{tag} Team {i + 1}" for i in range(plan.teams)]
    stats = {"users": plan.users, "teams": plan.teams, "jump_clients": plan.jump_clients}
    with eng.begin() as c:
        start = _max_id(c, users) + 1
        c.execute(users.insert(), [dict(
            id=start + i, username=n, display_name=f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}",
            email=f"{n}@example.com", password_hash=pw, must_change_password=False, is_admin=False,
            permissions=["reporting"], enabled=rng.random() > 0.05, created_at=now - rng.random() * 86400 * 365,
            last_login_at=now - rng.random() * 86400 * 30, timezone="UTC") for i, n in enumerate(names)])
        if team_names:
            c.execute(T.teams.insert(), [dict(name=t, description=f"generated team {t}", created_at=now)
                                         for t in team_names])
            c.execute(T.team_members.insert(), [dict(team=team_names[i % len(team_names)], username=n,
                                                     role="lead" if i < len(team_names) else "member")
                                                for i, n in enumerate(names)])
        c.execute(T.jumpoints.insert(), [dict(name=f"{tag}-jp{i}", description="", hostname=f"jp{i}.example.com",
                                              enabled=True, protocols=["rdp", "ssh"], allowed_networks=[],
                                              max_sessions=50, created_at=now) for i in range(2)])
        c.execute(T.jump_client_groups.insert(), [dict(name=f"{tag}-group{i}", description="", allow_unattended=i == 0,
                                                       jumpoint=f"{tag}-jp{i % 2}", created_at=now) for i in range(4)])
        if plan.jump_clients:
            c.execute(T.jump_clients.insert(), [dict(
                name=f"{tag}-jc{i:06d}", hostname=f"host{i}.corp.example", group_name=f"{tag}-group{i % 4}",
                os=rng.choice(OSES), public_ip=f"198.51.{(i >> 8) % 256}.{i % 256}", comments="",
                last_seen_at=now - rng.random() * 86400, created_at=now) for i in range(plan.jump_clients)])
    progress("config", 1, 1)
    reps = names or ["admin"]
    team_of = {n: team_names[i % len(team_names)] for i, n in enumerate(names)} if team_names else {}
    span = plan.days * 86400
    chunk = 20_000
    done = 0
    with eng.connect() as c:
        sid0, eid0 = _max_id(c, H.session_records) + 1, _max_id(c, H.session_events) + 1
    ev_id = eid0
    while done < plan.sessions:
        n = min(chunk, plan.sessions - done)
        srows, erows = [], []
        for j in range(n):
            sid = sid0 + done + j
            start = now - span + (done + j) * span / max(plan.sessions, 1) + rng.random()
            dur = rng.expovariate(1 / 900)
            rep = rng.choice(reps)
            srows.append(dict(id=sid, lsid=f"{rng.getrandbits(128):032x}", kind=rng.choice(KINDS), rep=rep,
                              team=team_of.get(rep),
                              customer_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                              customer_host=f"pc{rng.randrange(100000)}.customer.example",
                              jump_client=None, started_at=start, ended_at=start + dur,
                              end_reason=rng.choice(REASONS)))
            for e in range(plan.events_per_session):
                erows.append(dict(id=ev_id, session_id=sid, at=start + dur * (e + 1) / (plan.events_per_session + 1),
                                  type=rng.choice(EVENTS), actor=rep, data={"n": e}))
                ev_id += 1
        with eng.begin() as c:
            c.execute(H.session_records.insert(), srows)
            if erows:
                c.execute(H.session_events.insert(), erows)
            lid = _max_id(c, H.license_usage) + 1
            c.execute(H.license_usage.insert(), [dict(id=lid + i, at=r["started_at"], username=r["rep"],
                                                      type="license.acquire", in_use=rng.randrange(1, 50), total=50)
                                                 for i, r in enumerate(srows[::20])])
            tid = _max_id(c, H.team_activity) + 1
            c.execute(H.team_activity.insert(), [dict(id=tid + i, at=r["started_at"], team=r["team"] or "-",
                                                      username=r["rep"], type="session.start", detail=r["lsid"])
                                                 for i, r in enumerate(srows[::10])])
        done += n
        progress("sessions", done, plan.sessions)
    stats.update(sessions=plan.sessions, events=ev_id - eid0)
    total = 0
    for i in range(plan.files):
        size = int(rng.choice((0.001, 0.01, 0.2, 1.0)) * plan.max_file_mb * (1 << 20) * rng.random()) + 1
        sha, size = site.files.blobs.put_stream(_stream(rng, size))
        site.files.add(f"{tag}-file-{i:04d}.bin", sha, size, "application/octet-stream", "generated", "seed")
        total += size
        progress("files", i + 1, plan.files)
    rec_bytes = 0
    with eng.connect() as c:
        sids = [r[0] for r in c.execute(sa.select(H.session_records.c.id).order_by(H.session_records.c.id.desc())
                                         .limit(max(plan.recordings, 1)))]
    for i in range(plan.recordings):
        size = int(plan.recording_mb * (1 << 20) * (0.5 + rng.random()))
        sha, size = site.recordings.put_stream(_stream(rng, size))
        with eng.begin() as c:
            c.execute(H.recordings.insert().values(kind=rng.choice(REC_KINDS), sha256=sha, size=size,
                                                   session_id=sids[i % len(sids)] if sids else None,
                                                   started_at=now - rng.random() * 86400, duration_seconds=size / 50000))
        rec_bytes += size
        progress("recordings", i + 1, plan.recordings)
    stats.update(files=plan.files, file_bytes=total, recordings=plan.recordings, recording_bytes=rec_bytes)
    return stats
