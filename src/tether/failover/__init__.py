"""The failover pair (FO-01..10): two appliances hosting one site, one
primary and one backup.

This package owns the pair: the authenticated peer link between the two
appliances (``peer_auth``: keys, request and response signatures, replay and
failure limits; ``peer_client``: the pinned HTTPS client), and, as they are
built, sync, status, then the monitor, the witness and the client-traffic
swing. The wire format is docs/formats/peer-protocol.md. HTTP routes only
parse, call into this package and present."""
