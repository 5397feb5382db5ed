"""Ready-made glue between modelboard and the proxies that use it (each an extra)."""
