"""Framework-free helpers (NumPy, PIL, standard library)."""
