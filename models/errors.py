"""Domain errors. Each message is a plain sentence for the person who caused it (in French, as the
operators and mayors read them), saying what is wrong and what is accepted."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause; the CLI, the API and the flows show its message as is."""


class NotFound(DomainError):
    """Something named by the user does not exist."""


class InvalidInput(DomainError):
    """Input rejected at a boundary (identifier, code, quantity, date, email…)."""


class InvalidTransition(DomainError):
    """A status change that the lifecycle does not allow (e.g. delivering before acknowledging)."""


class NotEligible(DomainError):
    """The collectivity cannot be served under the tripartite convention."""


class StorageUnavailable(DomainError):
    """The database cannot be reached or is not initialised."""
