"""Where an alert goes: the :class:`Notifier` interface and the Slack-compatible webhook.

The body is Slack's incoming-webhook format (``text`` plus one legacy ``attachment`` with the
level's colour, title, text and the run), which Slack, Mattermost, Rocket.Chat, Discord's
``/slack`` endpoints and most chat bridges accept as it is.
"""

from __future__ import annotations

import abc
from typing import Any

import httpx

from runyard.store.sql_system import OutboxAlert

_COLORS = {"INFO": "#439FE0", "WARN": "warning", "ERROR": "danger"}
_ICONS = {"INFO": ":information_source:", "WARN": ":warning:", "ERROR": ":rotating_light:"}


class DeliveryError(RuntimeError):
    """An alert could not be delivered; ``retry`` says whether trying again later may work."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Notifier(abc.ABC):
    """Sends one alert. Called on the dispatcher's thread only; may block (bounded by its own
    timeout). Raises :class:`DeliveryError` when the alert was not delivered."""

    @abc.abstractmethod
    def send(self, item: OutboxAlert) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _escape(text: str) -> str:
    """Slack's three control characters (its messages are mrkdwn)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(item: OutboxAlert) -> dict[str, Any]:
    """The Slack-compatible JSON body for an alert."""
    alert = item.alert
    path = f"{item.entity}/{item.project}/{item.run_id}"
    run = f"{item.run_name} ({path})" if item.run_name and item.run_name != item.run_id else path
    title, text = _escape(alert.title), _escape(alert.text)
    return {
        "text": f"{_ICONS.get(alert.level, '')} [{alert.level}] {title} (run {_escape(run)})",
        "attachments": [
            {
                "fallback": f"[{alert.level}] {title}: {text}",
                "color": _COLORS.get(alert.level, "#439FE0"),
                "title": title,
                "text": text,
                "fields": [
                    {"title": "Run", "value": _escape(run), "short": True},
                    {"title": "Level", "value": alert.level, "short": True},
                ],
                "footer": "runyard",
                "ts": int(alert.timestamp),
            }
        ],
    }


class WebhookNotifier(Notifier):
    """POSTs :func:`slack_message` to ``url``. A 2xx answer is delivered; 408, 429 and 5xx
    answers and network errors are retried later; any other answer is final (a wrong URL)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"alert webhook {url!r} is not an http(s) URL; give the incoming-webhook URL "
                f"(e.g. https://hooks.slack.com/services/...)"
            )
        self.url = url
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, item: OutboxAlert) -> None:
        try:
            response = self._client.post(self.url, json=slack_message(item))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {exc!r}", retry=True) from None
        if 200 <= response.status_code < 300:
            return
        retry = response.status_code in (408, 429) or response.status_code >= 500
        raise DeliveryError(
            f"webhook answered {response.status_code}: {response.text[:200]}", retry=retry
        )

    def close(self) -> None:
        self._client.close()
