"""Where code runs and on what: profiles, hardware and dtype, model loading, memory measurement,
and where the kit stores files."""
