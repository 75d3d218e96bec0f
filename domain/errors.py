"""Errors a domain guard raises when a command would make the record say something impossible."""


class DomainError(Exception):
    """A command refused by the model; the message says why in the domain's words."""


class FactConflictError(DomainError):
    """The same fact id is already recorded with other content (a correction must be a new event)."""


class UnknownReferenceError(DomainError):
    """A fact names a unit, person, center, plan or event that the record does not hold."""


class ReferenceMismatchError(DomainError):
    """A fact answers (refers_to) or retracts an event of the wrong kind or of another subject."""


class AlreadyRetractedError(DomainError):
    """A fact that was already retracted cannot be retracted again by another correction."""
