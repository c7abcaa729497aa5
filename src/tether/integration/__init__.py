"""``tether-integration`` (IC-03): a separate program that pulls a site's
backups, session data and recordings on a schedule into a local folder or an
S3-compatible bucket, keeps a retention policy for backups, and resumes an
interrupted pass with no duplicate and no partial file visible.

It talks to the appliance only over HTTPS (the site's JSON API, with an API
account's client credentials) and imports no domain package: only
``tether.core`` helpers (errors, the clock and its test seam, crash points)
and ``tether.cli.output`` (the Error:/Try: lines and exit codes).

Modules: config (TOML + flags), siteapi (the HTTPS client and the version
check), destinations (folder, S3), retention (restic-style keep rules),
state (the state file and the lock), pull (one pass of each kind),
progress (Rich bars on a terminal, plain lines otherwise), cli."""
