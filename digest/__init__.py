"""papers-digest."""
