"""The body guard's cheap checks (one pass, substring searches) agree with the full walks they stand in for."""
from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from backend.common.requests import body_problems, json_depth, unstorable_value

# JSON values with awkward strings: quotes, backslashes, brackets, escapes, NUL, lone surrogates.
_TEXT = st.text(alphabet=st.sampled_from(['"', "\\", "[", "]", "{", "}", "a", "é", "\x00", "\ud800", "\udfff",
                                          "u", "0", "😀", "\n"]), max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, ascii_only=st.booleans(), limit=st.integers(min_value=0, max_value=6))
@example(value=[float("inf")], ascii_only=False, limit=0)  # too deep and not finite: refused as too deep
def test_bytes_checks_agree_with_the_walks(value, ascii_only, limit):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    payload = json.loads(raw)
    too_deep, problem = body_problems(raw, payload, limit)
    assert too_deep == (json_depth(payload) > limit)
    if not too_deep:  # a body nested too deeply is refused for that alone, before anything else in it is read
        assert problem == unstorable_value(payload)


def test_depth_counts_like_the_walk_on_mixed_and_empty_containers():
    for text, depth in (("1", 0), ("{}", 1), ("[{}]", 2), ('{"a": [[], {"b": "]]}"}]}', 3), ("[[], [[[]]]]", 4)):
        payload = json.loads(text)
        assert json_depth(payload) == depth
        assert not body_problems(text.encode(), payload, depth)[0], text
        assert depth == 0 or body_problems(text.encode(), payload, depth - 1)[0], text


def test_numbers_that_overflow_to_infinity_are_found():
    for literal in ("NaN", "-Infinity", "1e999", "1" * 250 + "e99", "1" * 400 + ".5", "-0.5E+400"):
        raw = f'{{"x": [{literal}]}}'.encode()
        assert body_problems(raw, json.loads(raw), 32) == (False, "number"), literal
    raw = b'{"x": [1e99, 123456789.25e-300, "NaN is text", "4e1234"]}'
    assert body_problems(raw, json.loads(raw), 32) == (False, None)


def test_utf16_body_falls_back_to_the_walk():
    raw = json.dumps({"a": "x\u0000", "b": [[[]]]}).encode("utf-16")
    assert body_problems(raw, json.loads(raw), 2) == (True, "text")
