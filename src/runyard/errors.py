"""W&B's exception names (``wandb.errors``), so that ``except wandb.errors.CommError`` in code
run with ``import runyard as wandb`` catches what runyard raises for the same cause.

This module imports nothing: every room (the store included) may derive its errors from these.

* :class:`Error`: base of every error below (W&B's ``wandb.Error``);
* :class:`CommError`: the store cannot be reached or refused a request
  (``runyard.store.base.StoreError`` and its subclasses derive from it);
* :class:`AuthenticationError`: the server refused the API key (401) or the key may not do
  this (403) (``runyard.store.http.StoreAuthError``);
* :class:`UsageError`: a wrong argument or call order (also a ``ValueError``, which runyard
  raised for these before);
* :class:`UnsupportedError`: something W&B does that runyard does not.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CommError",
    "Error",
    "UnsupportedError",
    "UsageError",
    "WandbCoreNotAvailableError",
]


class Error(Exception):
    """Base of runyard's W&B-named errors (``wandb.Error``)."""

    def __init__(self, message: str = "", context: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class CommError(Error):
    """The store could not be reached, or it refused a request (``wandb.errors.CommError``)."""

    def __init__(self, msg: str = "", exc: BaseException | None = None) -> None:
        super().__init__(msg)
        self.exc = exc


class AuthenticationError(CommError):
    """The server refused the API key, or the key may not do this."""


class UsageError(Error, ValueError):
    """A call runyard cannot honour as given (a wrong argument, a missing init())."""


class UnsupportedError(UsageError):
    """Something W&B supports that runyard does not."""


class WandbCoreNotAvailableError(Error):
    """Never raised by runyard (it has no separate core process); here for ``except``."""
