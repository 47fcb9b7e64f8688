"""OCPP 1.6-J central system: WebSocket endpoint, handlers, registry and command relay."""
