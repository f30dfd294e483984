"""Alert notifications: the webhook message (:mod:`runyard.alerts.webhook`) and the dispatcher
that drains the store's alert outbox into it (:mod:`runyard.alerts.dispatch`).

``run.alert()`` only journals an alert; the store keeps it as a run event and decides, when it
applies it, whether it is notified or suppressed by the per-title ``wait_duration``. Whoever
holds the webhook's URL delivers: ``runyard server`` (``--alert-webhook``), or the SDK itself
for the embedded store (``RUNYARD_ALERT_WEBHOOK``). Delivery runs on its own thread and never
blocks a request or the training loop.
"""

from runyard.alerts.dispatch import AlertDispatcher
from runyard.alerts.webhook import DeliveryError, Notifier, WebhookNotifier, slack_message

__all__ = ["AlertDispatcher", "DeliveryError", "Notifier", "WebhookNotifier", "slack_message"]
