"""YAML text to plain Python, fast where that is provably the same reading.

The round-trip reader (ruamel, YAML 1.2) gives the line of every refusal, but reads slowly. PyYAML's
C parser reads the common case many times faster; `fast_yaml` uses it only where it reads exactly
what the YAML 1.2 reader reads, and answers None otherwise (then the caller reads with ruamel).
Checked against ruamel with hypothesis (tests/unit/test_fast_yaml.py). Pure: text in, data out.
"""
from __future__ import annotations

import re
from typing import Any


class _Unsure(Exception):
    """The fast reader is not certain to read this text as the YAML 1.2 reader would."""


_CANONICAL = {
    "tag:yaml.org,2002:int": re.compile(r"-?(?:0|[1-9][0-9]*)"),
    "tag:yaml.org,2002:float": re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+"),
    "tag:yaml.org,2002:bool": re.compile(r"true|false"),
    "tag:yaml.org,2002:null": re.compile(r"|~|null"),
}
_fast_loader: list[Any] = []


def _make_fast_loader() -> Any:
    """PyYAML's C parser and composer, tagging plain scalars with the YAML 1.2 resolvers of
    ruamel (so `yes` stays text). It only composes: `_plain_data` makes the data, and takes only
    canonical numbers, booleans and nulls; anything else (`0o17`, `1_000`, `True`, merge keys,
    duplicate keys …) is _Unsure and goes to the round-trip reader."""
    import yaml
    from ruamel.yaml.resolver import implicit_resolvers

    class Loader(yaml.CSafeLoader):
        yaml_implicit_resolvers: dict = {}

    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            # (ruamel's patterns are compiled lazily, behind a proxy: the pattern itself)
            Loader.add_implicit_resolver(tag, regexp.match.__self__, first)

    # PyYAML's `resolve` for this loader (no path resolvers), in a table by first character:
    # the C composer calls it once for every node
    wildcard = tuple(Loader.yaml_implicit_resolvers.get(None, []))
    by_first = {first: tuple(resolvers) + wildcard for first, resolvers in Loader.yaml_implicit_resolvers.items()
                if first is not None}
    scalar_node, sequence_node = yaml.ScalarNode, yaml.SequenceNode
    assert not Loader.yaml_path_resolvers

    def resolve(self, kind, value, implicit):
        if kind is scalar_node:
            if implicit[0]:
                for tag, regexp in by_first.get(value[:1], wildcard):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is sequence_node else _MAP

    Loader.resolve = resolve
    return Loader


_TAG = "tag:yaml.org,2002:"
_STR, _INT, _MAP, _SEQ = _TAG + "str", _TAG + "int", _TAG + "map", _TAG + "seq"


def _plain_data(node: Any, int_keys: bool) -> Any:
    """The composed document (PyYAML's C composer: nodes tagged by the YAML 1.2 resolvers) as
    plain Python, in one tight walk instead of PyYAML's general constructor (a 130 KB plan: 37 ->
    23 ms, with `resolve` above). Only called on text without "!", so every tag is the resolvers'
    (no explicit tags): a scalar tagged !!str is text. A collection met twice (an alias) is
    _Unsure: the round-trip reader decides."""
    import yaml
    scalar_node, mapping_node = yaml.ScalarNode, yaml.MappingNode
    int_pattern = _CANONICAL[_INT]
    number = {_INT: (int_pattern, int), _TAG + "float": (_CANONICAL[_TAG + "float"], float),
              _TAG + "bool": (_CANONICAL[_TAG + "bool"], "true".__eq__),
              _TAG + "null": (_CANONICAL[_TAG + "null"], lambda v: None)}
    seen: set[int] = set()

    def build(node: Any) -> Any:
        tag = node.tag
        if type(node) is scalar_node:
            if tag == _STR or tag == _TAG + "timestamp":  # (dates stay text)
                return node.value
            pattern, convert = number.get(tag) or (None, None)
            if pattern is None or node.style not in (None, "") or not pattern.fullmatch(node.value):
                raise _Unsure(node.value)
            return convert(node.value)
        if id(node) in seen:
            raise _Unsure("alias")
        seen.add(id(node))
        if tag == _SEQ:
            return [build(item) for item in node.value]
        if tag != _MAP or type(node) is not mapping_node:
            raise _Unsure(tag)
        out: dict = {}
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key_node.tag == _STR and type(key_node) is scalar_node:
                value_key = key
            elif (int_keys and key_node.tag == _INT and key_node.style in (None, "")
                  and int_pattern.fullmatch(key) is not None):
                value_key = int(key)  # (a year: both readers make it an int; the facts and plan
                # readers turn every key into text, so they do not ask)
            else:
                raise _Unsure("key")
            if key in keys:
                raise _Unsure("key")
            keys.add(key)
            out[value_key] = build(value_node)
        return out

    return None if node is None else build(node)


def fast_yaml(text: str, int_keys: bool = False) -> Any:
    """The document as plain Python, read by a C parser, or None when only the round-trip
    reader can say for certain (then it also gives the lines for any refusal). Keys are text;
    `int_keys` also takes canonical integer keys, as ints (the calendar's years)."""
    if "!" in text:  # a tag anywhere (or just the character): ruamel keeps tags, let it read this
        return None
    try:
        import yaml  # noqa: F401
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    if not _fast_loader:
        _fast_loader.append(_make_fast_loader())
    try:
        loader = _fast_loader[0](text)
        try:
            return _plain_data(loader.get_single_node(), int_keys)
        finally:
            loader.dispose()
    except Exception:
        return None


def load_yaml(text: str, int_keys: bool = False) -> Any:
    """A data file the project ships (calendar, names) as plain Python: the fast reader where it
    is sure, else ruamel's safe reader — dates as text either way."""
    data = fast_yaml(text, int_keys=int_keys)
    if data is None:
        from ruamel.yaml import YAML
        y = YAML(typ="safe")
        y.constructor.add_constructor("tag:yaml.org,2002:timestamp", lambda c, n: str(c.construct_scalar(n)))
        data = y.load(text)
    return data
