"""The JSON the CLI and the API write a piece at a time is the JSON they would write whole."""
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
