"""One module per conversation job (find, start, status, stop, history, prices, support)."""
