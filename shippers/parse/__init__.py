"""Parse: raw text and bytes to ECS documents. Pure functions, no I/O; they never raise on input."""
