"""Field validators with messages an administrator can act on, the conversion
of pydantic validation errors into one ``Invalid`` that names the field
(``dns_servers.1``) and what is wrong with it, and the bounded integer types
every face uses for its path, query and body integers (``Int``, ``Natural``,
``Id``): an integer a database column cannot hold (above 2^63-1) is refused
as bad input (422) where it enters, never passed on to fail in the database."""

from __future__ import annotations

import ipaddress
import re

from typing import Annotated

from pydantic import BaseModel, Field, Strict, ValidationError

from .errors import Invalid

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # what SQLite's and PostgreSQL's BIGINT hold

# The upper bound is written ``lt=2^63``: FastAPI's OpenAPI model keeps bounds as floats, and 2^63 is
# exact as a float where 2^63-1 is not (it would round up and document 2^63 as allowed).
Int = Annotated[int, Field(ge=INT64_MIN, lt=INT64_MAX + 1)]  # any integer a database column holds
Natural = Annotated[int, Field(ge=0, lt=INT64_MAX + 1)]  # an offset, a position, a count, a size
Id = Annotated[int, Field(ge=1, lt=INT64_MAX + 1)]  # a row's id or number (ids start at 1)
PortNumber = Annotated[int, Field(ge=1, le=65535)]
# a JSON boolean: true or false only (not 0/1, "yes", "on"); forms convert their checkboxes first
Bool = Annotated[bool, Strict()]



def as_id(value: object) -> int:
    """A form field or a path segment as an ``Id`` (for the pages that read them by hand); ValueError if not one."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= INT64_MAX:
        raise ValueError(f"{text!r} is not an id")
    return int(text)


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not a valid IP address") from None


def ip_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a valid network (use CIDR, e.g. 10.0.0.0/8)") from None


def netmask(value: str) -> str:
    v = str(value).strip()
    try:
        if v.isdigit():
            prefix = int(v)
            if not 0 <= prefix <= 128:
                raise ValueError
            return v
        ipaddress.IPv4Network(f"0.0.0.0/{v}")
        return v
    except ValueError:
        raise ValueError(f"{value!r} is not a valid netmask (e.g. 255.255.255.0 or 24)") from None


def hostname(value: str) -> str:
    v = str(value).strip().rstrip(".")
    if not v or len(v) > 253 or not all(_HOST_LABEL.match(p) for p in v.split(".")):
        raise ValueError(f"{value!r} is not a valid host name")
    return v.lower()


def host(value: str) -> str:
    """A host name or an IP address."""
    try:
        return ip_address(value)
    except ValueError:
        pass
    try:
        return hostname(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither an IP address nor a host name") from None


def port(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} is not a valid port (1-65535)")
    return value


def parse_model(model: type[BaseModel], data: object, prefix: str = ""):
    """Validate ``data`` into ``model`` or raise Invalid naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = ".".join(str(p) for p in first["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or None
        msg = first["msg"].removeprefix("Value error, ")
        err = Invalid(f"{field}: {msg}" if field else msg, field=field)
        err.details = [  # type: ignore[attr-defined]
            {"field": f"{prefix}{'.'.join(str(p) for p in e['loc'])}", "message": e["msg"].removeprefix("Value error, ")}
            for e in errors
        ]
        raise err from None
