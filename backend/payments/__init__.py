"""Adapters of the card-gateway port (backend/services/ports.py): Stripe, and the demo's
test payments."""
