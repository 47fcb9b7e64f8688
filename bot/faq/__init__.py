"""FAQ loading and fuzzy matching over data/faq.yaml."""
