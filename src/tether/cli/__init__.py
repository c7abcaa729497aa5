"""The ``tether`` and ``tether-vendor`` command lines: thin wrappers that parse
arguments, call the runtime (local data directory) or a running appliance
over HTTPS (``--url``), and print text or ``--json``. Exit codes are listed
in docs/cli.md."""
