"""msgspec Structs of each area: rows (positional) and inputs (keyword-only)."""
