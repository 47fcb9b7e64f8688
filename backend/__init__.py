"""chargebot backend: domain services, admin API and the OCPP 1.6-J central system."""
