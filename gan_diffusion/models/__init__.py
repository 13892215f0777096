"""Framework-free model definitions: typed configs, architecture plans, canonical weights."""
