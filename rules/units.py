"""Which registered units a plan's unit name denotes (集合名称展开), from rules/collective_names.yaml."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def collective_names() -> dict[str, list[str]]:
    from rules.yamltext import load_yaml
    text = resources.files("rules").joinpath("collective_names.yaml").read_text(encoding="utf-8")
    return dict(load_yaml(text) or {})


def expand(name: str, units: dict[str, dict], jurisdiction: str) -> list[str]:
    """Unit ids for a name as the document writes it: an exact registered name first, else the
    kinds a collective name denotes; [] when nothing registered matches (the name is kept)."""
    exact = sorted(uid for uid, u in units.items() if u.get("name") == name and u.get("jurisdiction") == jurisdiction)
    if exact:
        return exact
    kinds = collective_names().get(name)
    if not kinds:
        return []
    return sorted(uid for uid, u in units.items() if u.get("kind") in kinds and u.get("jurisdiction") == jurisdiction)
