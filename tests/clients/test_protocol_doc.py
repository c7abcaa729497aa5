"""docs/formats/client-protocol.md names recordings as the site stores and
serves them: one name for a command shell's recording everywhere."""

import re
from pathlib import Path

from tether.site import history

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats" / "client-protocol.md"


def test_the_protocol_document_names_the_recording_kinds_the_site_stores():
    text = " ".join(DOC.read_text().split())
    part = text[text.index("## Sessions, history and recordings"):text.index("## Errors and close codes")]
    said = re.search(r"recording of kind `([a-z_]+)`", part)
    assert said and said.group(1) == "command_shell" in history.RECORDING_KINDS, part
    ext, media_type = history.RECORDING_FORMATS["command_shell"]
    assert f"recording-<id>-command_shell.{ext}" in part and media_type in part
    for kind in history.RECORDING_KINDS:
        assert f"`{kind}`" in part, kind
    # what the hub stores for a command shell (that same kind) is asserted end to end in test_clients_e2e
