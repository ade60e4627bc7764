"""Webhooks over HTTP, signed per the Standard Webhooks specification (`standardwebhooks`)."""

from analytics_adapters.webhooks.sender import HttpWebhookSender, is_internal

__all__ = ["HttpWebhookSender", "is_internal"]
