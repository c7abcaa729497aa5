"""ROB-02: the depth-limited JSON reader (core/jsonread.py) counts only real
nesting (brackets inside strings, escaped quotes included, do not count),
parses what is within its limit exactly as json.loads does, and refuses what
is deeper, or malformed, with a ValueError, never a RecursionError."""

import json

import pytest

from tether.core import jsonread


@pytest.mark.req("ROB-02")
def test_depth_counts_real_nesting_only():
    assert jsonread.depth('"x"') == 0
    assert jsonread.depth("[1, {\"a\": [2]}]") == 3
    assert jsonread.depth('["[[[[", {"k": "}}]]"}]') == 2
    assert jsonread.depth(r'["a\"[[[", "\\", [[]]]') == 3  # an escaped quote does not end the string
    doc = {"a": [{"b": "[" * 50}], "c": r"\"{{{"}
    assert jsonread.depth(json.dumps(doc)) == 3 and jsonread.loads(json.dumps(doc), 3) == doc


@pytest.mark.req("ROB-02")
def test_deeper_than_the_limit_or_malformed_is_a_value_error():
    ok = "[" * 32 + "]" * 32
    assert jsonread.loads(ok, 32) == json.loads(ok)
    for text in ("[" * 33 + "]" * 33, "[" * 100_000 + "]" * 100_000, "[" * 100_000, '{"a": ' * 5_000):
        with pytest.raises(jsonread.TooDeep):
            jsonread.loads(text, 32)
    for text in ("", "{not json", '"unterminated', b"\xff\xfe", '["\\'):
        with pytest.raises(ValueError):
            jsonread.loads(text, 32)
    # nothing escapes as a RecursionError, even with a limit above the parser's own
    with pytest.raises(jsonread.TooDeep):
        jsonread.loads("[" * 100_000 + "]" * 100_000, 10**9)
