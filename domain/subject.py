"""What every aggregate of the record shares: the facts it has recorded and their corrections.

A fact is one statement of a facts file (or of the API): it has an id, a type, the calendar
date it happened (valid time) and its details. An aggregate keeps the ids and content hashes of
the facts recorded on it, so a replay can tell a repeat (no-op) from a conflict (refused), and
the ids it has retracted, because nothing recorded is ever changed (更正以新事件记录).
"""
from __future__ import annotations

from hashlib import sha1
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import AlreadyRetractedError, FactConflictError, ReferenceMismatchError

ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://metrolex.invalid/record")
_NAMESPACE_BYTES = ID_NAMESPACE.bytes
# RFC 4122 variant (10xx) and version 5 (0101) over the first 16 bytes of the SHA-1 digest
_UUID5_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID5_SET = (0x8000 << 48) | (5 << 76)


class Subject(Aggregate):
    """Base of the aggregates that facts are recorded on."""

    prefix = "subject"

    @classmethod
    def create_id(cls, key: str, **_: object) -> UUID:  # noqa: D401 - eventsourcing hook
        """uuid5(ID_NAMESPACE, "prefix:key"), made as uuid5 makes it but without its keyword
        checks (a load makes one per new aggregate: 2.7 -> 1.6 us; tests/unit/test_domain.py
        holds it equal to uuid5)."""
        digest = sha1(_NAMESPACE_BYTES + f"{cls.prefix}:{key}".encode()).digest()
        return UUID(int=(int.from_bytes(digest[:16], "big") & _UUID5_KEEP) | _UUID5_SET)

    def _note(self, fact_id: str, content_hash: str, fact_type: str) -> None:
        if not hasattr(self, "facts"):
            self.facts = {}
            self.fact_types = {}
            self.retracted = {}
        self.facts[fact_id] = content_hash
        self.fact_types[fact_id] = fact_type

    def check_fact_is_new(self, fact_id: str, content_hash: str) -> bool:
        """True when the fact is new; False when it is an exact repeat; raises on a conflict."""
        known = getattr(self, "facts", {}).get(fact_id)
        if known is None:
            return True
        if known != content_hash:
            raise FactConflictError(
                f"fact {fact_id!r} is already recorded with different content; "
                "record a correction (event-retracted) and a new event instead"
            )
        return False

    def check_can_retract(self, fact_id: str, retraction_id: str) -> None:
        types = getattr(self, "fact_types", {})
        if fact_id not in types:
            raise ReferenceMismatchError(f"{fact_id!r} is not recorded on {self.prefix} {self.key!r}")
        if types[fact_id] == "event-retracted":
            raise ReferenceMismatchError(f"{fact_id!r} is itself a retraction and cannot be retracted")
        by = getattr(self, "retracted", {}).get(fact_id)
        if by is not None and by != retraction_id:
            raise AlreadyRetractedError(f"{fact_id!r} was already retracted by {by!r}")

    @event("FactRetracted")
    def retract(self, fact_id: str, retraction_id: str, content_hash: str, date: str, reason: str) -> None:
        """撤销: a correction of the record; the retracted fact counts for no as-of date from now on."""
        self._note(retraction_id, content_hash, "event-retracted")
        self.retracted[fact_id] = retraction_id
