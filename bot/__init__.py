"""chargebot conversation engine: channel-neutral flows, FAQ and channel adapters."""
