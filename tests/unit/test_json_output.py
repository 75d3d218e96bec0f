"""Text written a piece at a time: the JSON of the CLI and the API is the JSON they would write
whole, and COPY text is escaped as PostgreSQL reads it."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.api import json_object_stream
from adapters.commands import _print_json_array

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
items = st.lists(st.dictionaries(st.text(max_size=6), values, max_size=4), max_size=6)


@settings(max_examples=200, deadline=None)
@given(items)
def test_an_array_printed_item_by_item_is_the_array_printed_whole(xs):
    out = io.StringIO()
    with redirect_stdout(out):
        _print_json_array(iter(xs))
    assert out.getvalue() == json.dumps(xs, ensure_ascii=False, indent=2) + "\n"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k != "items"), values, max_size=4), items,
       st.integers(min_value=1, max_value=4))
def test_an_object_streamed_in_chunks_is_the_object_rendered_whole(head, xs, batch):
    from fastapi.responses import JSONResponse
    body = b"".join(json_object_stream(head, "items", iter(xs), batch=batch))
    assert body == JSONResponse(head | {"items": xs}).body


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab中\\\t\n\r N")), max_size=30) | st.text(max_size=30))
def test_copy_text_escapes_as_the_copy_format_says(text):
    """PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped with a
    backslash, everything else as it is (the round trip is tested on a real server too)."""
    from adapters.store import _copy_field, copy_text
    reference = text.translate(str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}))
    assert _copy_field(text) == reference
    assert copy_text([(text, None, 1, 2.5)]) == reference + "\t\\N\t1\t2.5\n"
