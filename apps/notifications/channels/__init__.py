"""Delivery channels: one module per channel, each with its providers (see base.py)."""
