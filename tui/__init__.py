"""modelboard terminal editor."""
