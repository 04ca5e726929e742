"""The sync flows: one module per flow, each registering its handlers on import."""
