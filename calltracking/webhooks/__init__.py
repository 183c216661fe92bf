"""Webhooks: subscriptions, signatures and the durable delivery queue every capability publishes to."""
