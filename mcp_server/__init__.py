"""The Anmei MCP sidecar: a separate process serving the four tenant-scoped tools over MCP.

Run `python -m mcp_server` (streamable HTTP on MCP_HOST:MCP_PORT, path /mcp) or
`python -m mcp_server --stdio`. It reads the Django ORM; see server.py for the call pipeline.
"""
