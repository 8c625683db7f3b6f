"""Memory-augmented networks: addressing functions, NTM and DNC cores, algorithmic tasks."""
