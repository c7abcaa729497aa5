"""Field validators with messages an administrator can act on, and the
conversion of pydantic validation errors into one ``Invalid`` that names the
field (``dns_servers.1``) and what is wrong with it."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ValidationError

from .errors import Invalid

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
