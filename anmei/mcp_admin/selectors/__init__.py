"""Reads for MCP: admin views of groups/tools/logs, the sidecar's per-call access decision, and the
tenant-scoped data the four tools return. Every function takes the tenant (or the acting user)
explicitly; nothing here reads across tenants."""
