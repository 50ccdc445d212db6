"""The route handlers, one module per area; each takes a `Call` and returns a response."""
