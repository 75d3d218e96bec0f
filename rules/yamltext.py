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
_fast_loaders: dict[bool, Any] = {}


def _make_fast_loader(int_keys: bool = False) -> Any:
    """PyYAML's C parser with the YAML 1.2 resolvers of ruamel (so `yes` stays text), dates as
    text, and only canonical numbers, booleans and nulls: anything else (`0o17`, `1_000`, `True`,
    merge keys, duplicate keys …) is _Unsure and goes to the round-trip reader."""
    import yaml
    from ruamel.yaml.resolver import implicit_resolvers

    class Loader(yaml.CSafeLoader):
        yaml_implicit_resolvers: dict = {}

    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            Loader.add_implicit_resolver(tag, regexp, first)

    def canonical(tag: str, convert):
        pattern = _CANONICAL[tag]

        def construct(loader, node):
            if node.style not in (None, "") or not pattern.fullmatch(node.value):
                raise _Unsure(node.value)
            return convert(node.value)
        return construct

    Loader.add_constructor("tag:yaml.org,2002:int", canonical("tag:yaml.org,2002:int", int))
    Loader.add_constructor("tag:yaml.org,2002:float", canonical("tag:yaml.org,2002:float", float))
    Loader.add_constructor("tag:yaml.org,2002:bool", canonical("tag:yaml.org,2002:bool", lambda v: v == "true"))
    Loader.add_constructor("tag:yaml.org,2002:null", canonical("tag:yaml.org,2002:null", lambda v: None))
    Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))

    def text(loader, node):
        # A plain scalar that resolves to something else was tagged !!str: ruamel keeps the tag.
        if node.style in (None, "") and loader.resolve(yaml.ScalarNode, node.value, (True, False)) != node.tag:
            raise _Unsure(node.value)
        return loader.construct_scalar(node)
    Loader.add_constructor("tag:yaml.org,2002:str", text)

    def unsure(loader, node):
        raise _Unsure(node.tag)
    for tag in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml",
                "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs",
                "tag:yaml.org,2002:binary"):
        Loader.add_constructor(tag, unsure)
    Loader.add_constructor(None, unsure)

    def mapping(loader, node):
        keys = set()
        for key_node, _ in node.value:
            # text keys; with int_keys also canonical integer keys (a year: both readers make it
            # an int — the facts and plan readers turn every key into text, so they do not ask)
            plain_int = (int_keys and key_node.tag == "tag:yaml.org,2002:int" and key_node.style in (None, "")
                         and _CANONICAL["tag:yaml.org,2002:int"].fullmatch(key_node.value) is not None)
            if (key_node.tag != "tag:yaml.org,2002:str" and not plain_int) or key_node.value in keys:
                raise _Unsure("key")
            keys.add(key_node.value)
        return loader.construct_mapping(node, deep=True)
    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    return Loader


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
    loader_class = _fast_loaders.get(int_keys)
    if loader_class is None:
        loader_class = _fast_loaders[int_keys] = _make_fast_loader(int_keys)
    try:
        loader = loader_class(text)
        try:
            return loader.get_single_data()
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
