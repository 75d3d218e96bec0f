"""Which registered units a plan's unit name denotes (集合名称展开), from rules/collective_names.yaml."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Callable


@lru_cache(maxsize=1)
def collective_names() -> dict[str, list[str]]:
    from rules.yamltext import load_yaml
    text = resources.files("rules").joinpath("collective_names.yaml").read_text(encoding="utf-8")
    return dict(load_yaml(text) or {})


def expander(units: dict[str, dict], jurisdiction: str) -> Callable[[str], list[str]]:
    """`expand` for many names over the same units: the units of the jurisdiction indexed once by
    name and by kind (a plan names a few hundred units, each of its tasks several)."""
    by_name: dict[str, list[str]] = {}
    by_kind: dict[str, list[str]] = {}
    for uid in sorted(units):
        u = units[uid]
        if u.get("jurisdiction") == jurisdiction:
            by_name.setdefault(u.get("name"), []).append(uid)
            by_kind.setdefault(u.get("kind"), []).append(uid)
    names = collective_names()

    def expand_name(name: str) -> list[str]:
        exact = by_name.get(name)
        if exact:
            return list(exact)
        kinds = names.get(name)
        if not kinds:
            return []
        return sorted(uid for kind in set(kinds) for uid in by_kind.get(kind, ()))

    return expand_name


def expand(name: str, units: dict[str, dict], jurisdiction: str) -> list[str]:
    """Unit ids for a name as the document writes it: an exact registered name first, else the
    kinds a collective name denotes; [] when nothing registered matches (the name is kept)."""
    return expander(units, jurisdiction)(name)
