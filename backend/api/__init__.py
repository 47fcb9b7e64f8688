"""HTTP routes: thin handlers over backend.services."""
