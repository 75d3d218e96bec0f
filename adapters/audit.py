"""Tamper evidence: the hash chain over the stored events (in commit order) and Merkle tree
heads in the style of RFC 6962, which `audit seal` prints for auditors to keep elsewhere."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import text

from adapters.store import EVENTS_TABLE, GENESIS, Store, chain_link


@dataclass
class VerifyResult:
    ok: bool
    events: int
    problem: str | None = None
    first_bad: int | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "events_verified": self.events, "problem": self.problem,
                "first_bad_notification_id": self.first_bad}


def _rows(store: Store):
    with store.engine.connect() as conn:
        events = conn.execute(text(f"SELECT id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} ORDER BY id")).all()
        chain = conn.execute(text("SELECT notification_id, recorded_at, link FROM record_chain ORDER BY notification_id")).all()
    return events, chain


def verify(store: Store) -> VerifyResult:
    events, chain = _rows(store)
    previous = GENESIS
    n = 0
    for i in range(max(len(events), len(chain))):
        ev = events[i] if i < len(events) else None
        ln = chain[i] if i < len(chain) else None
        if ev is None:
            return VerifyResult(False, n, f"event {ln[0]} is in the chain but missing from the record (deleted)", ln[0])
        if ln is None:
            return VerifyResult(False, n, f"event {ev[0]} is in the record but not in the chain (inserted)", ev[0])
        if ev[0] != ln[0]:
            bad = min(ev[0], ln[0])
            what = "deleted" if ln[0] < ev[0] else "inserted"
            return VerifyResult(False, n, f"event {bad} does not match the chain ({what} or reordered)", bad)
        expected = chain_link(previous, ev[0], ev[1], ev[2], ev[3], ev[4], ln[1])
        if expected != ln[2]:
            return VerifyResult(False, n, f"event {ev[0]} ({ev[3].split(':')[-1]}{_fact_id(ev[4])}) does not match "
                                          "the record's chain: its stored content, order or commit time was changed", ev[0])
        previous = ln[2]
        n += 1
    return VerifyResult(True, n)


def _fact_id(state: bytes) -> str:
    """Best effort: the fact id a stored event carries, to name it for the auditor."""
    try:
        data = json.loads(bytes(state))
    except Exception:
        return ""
    fid = data.get("fact_id") or data.get("retraction_id")
    return f", fact {fid}" if fid else ""


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over leaf hashes (split at the largest power of two below n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return items[0]
        k = 1
        while k * 2 < len(items):
            k *= 2
        return _node(mth(items[:k]), mth(items[k:]))
    return mth(level)


def leaves(store: Store) -> list[bytes]:
    events, chain = _rows(store)
    links = {c[0]: c[2] for c in chain}
    return [_leaf(f"{e[0]}|{links.get(e[0], '')}".encode() + bytes(e[4])) for e in events]


def seal(store: Store, at: str) -> dict:
    ls = leaves(store)
    return {"tree_size": len(ls), "root_hash": merkle_root(ls).hex(), "sealed_at": at, "hash": "sha256",
            "scheme": "RFC 6962 Merkle tree over (notification id, chain link, stored state)"}


def verify_against(store: Store, head: dict) -> VerifyResult:
    base = verify(store)
    if not base.ok:
        return base
    ls = leaves(store)
    size = int(head["tree_size"])
    if size > len(ls):
        return VerifyResult(False, base.events, f"the sealed head covers {size} events but the record holds {len(ls)}")
    root = merkle_root(ls[:size]).hex()
    if root != head["root_hash"]:
        return VerifyResult(False, base.events, f"the first {size} events do not match the sealed root {head['root_hash'][:16]}…")
    return base


def read_head(value: str) -> dict:
    from pathlib import Path
    p = Path(value)
    text_value = p.read_text(encoding="utf-8") if p.exists() else value
    try:
        head = json.loads(text_value)
        head["tree_size"], head["root_hash"]
        return head
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"--against: expected the JSON printed by `metrolex audit seal`, got {value[:60]!r}") from None


EXPORT_COLUMNS = ("unit", "rule", "rule_version", "subject", "period", "due", "status", "satisfied_on",
                  "provisional", "document", "clause", "explanation")


def export_rows(judgments) -> list[dict]:
    """The compliance report's rows, per unit and rule (CLI `audit export` and the API)."""
    return [{"unit": j.unit or "", "rule": j.rule, "rule_version": j.rule_version, "subject": j.subject,
             "period": j.period, "due": j.due, "status": j.status, "satisfied_on": j.satisfied_on or "",
             "provisional": j.provisional, "document": j.citation["document"], "clause": j.citation["clause"],
             "explanation": j.explanation} for j in judgments]


def export_csv(rows: list[dict]) -> str:
    import csv
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(EXPORT_COLUMNS))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
