"""Site backups (.nsb): the writer, the streaming reader and verifier, the
version rules, and restore with staging, atomic swap and crash recovery.
The format is docs/formats/nsb.md."""
