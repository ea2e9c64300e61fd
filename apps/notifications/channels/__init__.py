"""Delivery channels: one module per channel, each with its providers (see base.py);
registry.py picks the provider of a channel."""
