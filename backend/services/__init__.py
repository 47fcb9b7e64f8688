"""The domain: no web framework and no OCPP types here."""
