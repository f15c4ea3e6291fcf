"""Shared test helpers (the local Kafka broker and its clients)."""
