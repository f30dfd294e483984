"""The base of runyard's rich values and the errors they raise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext


class MediaError(ValueError):
    """A media value cannot be logged: the message names the key, the value's shape or type,
    and the fix. Raised by ``log()`` before anything of that call is journaled."""


class Media:
    """Base of the values ``log()`` stores as typed references (W&B's ``WBValue``/``Media``).

    Subclasses implement :meth:`_journal`: on the training thread, check the value and return
    its journal form — inline JSON, or a pending reference whose raw content went to the run's
    spool (``ctx.spool``) for the encoder thread. It must not encode or write files itself.
    """

    _log_type: str = ""

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        raise NotImplementedError

    @staticmethod
    def _fail(key: str, what: str, fix: str) -> MediaError:
        return MediaError(f"runyard.log: cannot log {key!r}: {what}; {fix}")
