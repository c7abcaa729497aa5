"""Deployed clients (CL-01..04): the appliance's client hub (connections,
sessions, recordings, pacing) and the client programs that connect to it:
``tether-jump``, ``tether-jumpoint`` and ``tether-rep``. The wire format is
in docs/formats/client-protocol.md."""
