"""HTML form fields <-> the site-data input models. Widgets are derived from
each pydantic model field (checkbox, number, select, multi-select, one
entry per line, secret, file) and child lists (team members, policy
members, survey questions) are edited one item per line; the result is
validated by the same model the JSON API uses, so errors are the same."""

from __future__ import annotations

import base64
import types
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from tether.core.errors import Invalid

LONG_TEXT = {"body", "description", "welcome_text", "greeting", "waiting_message", "session_end_message",
             "login_banner", "ca_certificate"}
CHILD_HELP = {
    "teams.members": "one per line: USERNAME [member|lead|manager]",
    "group-policies.members": "one per line: user USERNAME | team TEAM | group PROVIDER GROUP NAME",
    "exit-surveys.questions": "one per line: KIND | QUESTION | CHOICE, CHOICE | required  (KIND: text, choice, rating)",
}

from . import labels


@dataclass
class Widget:
    name: str
    label: str
    kind: str  # text textarea number checkbox select multi lines secret file children
    options: tuple = ()
    required: bool = False
    help: str = ""


def _unwrap(ann):
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return non_none[0] if len(non_none) == 1 else ann, True
    return ann, False


def widgets(model: type[BaseModel], slug: str, secrets: tuple[str, ...] = (), binary: tuple[str, ...] = (),
            skip: tuple[str, ...] = ()) -> list[Widget]:
    out = []
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        ann, optional = _unwrap(f.annotation)
        label = labels.label(name)
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        req = f.is_required()
        if name in binary:
            w = Widget(name, label + " (file; empty keeps the stored one)", "file")
        elif name in secrets:
            w = Widget(name, label + " (write-only; empty keeps the stored one)", "secret")
        elif ann is bool:
            w = Widget(name, label, "checkbox")
        elif ann in (int, float):
            w = Widget(name, label, "number", required=req)
        elif origin is typing.Literal:
            w = Widget(name, label, "select", tuple(([""] if optional else []) + list(args)), required=req)
        elif origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            w = Widget(name, label, "children", help=CHILD_HELP.get(f"{slug}.{name}", ""))
        elif origin is list and args and typing.get_origin(args[0]) is typing.Literal:
            w = Widget(name, label, "multi", typing.get_args(args[0]))
        elif origin is list:
            w = Widget(name, label + " (one per line)", "lines")
        else:
            if name == "ca_certificate":
                label += " (PEM, write-only; empty keeps the stored one)"
            w = Widget(name, label, "textarea" if name in LONG_TEXT else "text", required=req)
        out.append(w)
    return out


def _children_from(slug: str, field: str, text: str) -> list[dict]:
    items = []
    for i, line in enumerate(ln.strip() for ln in (text or "").splitlines()):
        if not line:
            continue
        where = f"{field} line {i + 1}"
        if slug == "teams":
            parts = line.split()
            items.append({"username": parts[0], **({"role": parts[1]} if len(parts) > 1 else {})})
        elif slug == "group-policies":
            kind, _, rest = line.partition(" ")
            rest = rest.strip()
            if kind == "user":
                items.append({"kind": "user", "username": rest})
            elif kind == "team":
                items.append({"kind": "team", "team": rest})
            elif kind == "group":
                prov, _, grp = rest.partition(" ")
                items.append({"kind": "provider_group", "provider": prov, "group_name": grp.strip()})
            else:
                raise Invalid(f"{where}: start with user, team or group", field=field)
        elif slug == "exit-surveys":
            parts = [p.strip() for p in line.split("|")]
            if len(parts) < 2:
                raise Invalid(f"{where}: write KIND | QUESTION [| CHOICES [| required]]", field=field)
            items.append({"kind": parts[0], "text": parts[1],
                          "choices": [c.strip() for c in parts[2].split(",") if c.strip()] if len(parts) > 2 else [],
                          "required": len(parts) > 3 and parts[3].lower() == "required"})
    return items


def _children_to(slug: str, items: list[dict]) -> str:
    lines = []
    for it in items:
        if slug == "teams":
            lines.append(f"{it['username']} {it.get('role', 'member')}")
        elif slug == "group-policies":
            k = it["kind"]
            lines.append(f"user {it['username']}" if k == "user" else f"team {it['team']}" if k == "team"
                         else f"group {it['provider']} {it['group_name']}")
        elif slug == "exit-surveys":
            lines.append(" | ".join([it["kind"], it["text"], ", ".join(it.get("choices") or []),
                                     "required" if it.get("required") else ""]).rstrip(" |"))
    return "\n".join(lines)


async def from_form(form, ws: list[Widget], slug: str) -> dict:
    data: dict = {}
    for w in ws:
        raw = form.get(w.name)
        if w.kind == "checkbox":
            data[w.name] = raw in ("on", "yes", "true", "1")
        elif w.kind == "multi":
            data[w.name] = [str(x) for x in form.getlist(w.name)]
        elif w.kind == "lines":
            data[w.name] = [ln.strip() for ln in str(raw or "").splitlines() if ln.strip()]
        elif w.kind == "children":
            data[w.name] = _children_from(slug, w.name, str(raw or ""))
        elif w.kind == "file":
            if raw is not None and hasattr(raw, "read"):
                content = await raw.read()
                if content:
                    data[w.name] = base64.b64encode(content).decode()
        elif raw is None or str(raw).strip() == "":
            continue  # blank: the default (or, for secrets, the stored value)
        else:
            data[w.name] = str(raw)
    return data


def to_form(row: dict, ws: list[Widget], slug: str) -> dict:
    out = {}
    for w in ws:
        v = row.get(w.name)
        if w.kind == "lines":
            out[w.name] = "\n".join(str(x) for x in v or [])
        elif w.kind == "children":
            out[w.name] = _children_to(slug, v or [])
        elif w.kind in ("secret", "file"):
            out[w.name] = "set" if row.get(f"{w.name}_set") else "not set"
        else:
            out[w.name] = "" if v is None else v
    return out
