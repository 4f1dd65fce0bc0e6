"""AI writes, by concern; callers import the module they need.

- `agent_config`: a tenant's agent configuration and the gateway's MCP key
- `metering`: the record of each agent call (tokens, cost) and the monthly quota alerts
- `canned_responses`: the tenant's shortcode replies
- `autoreply`: answering a customer message nobody is online for
- `summaries`: a conversation's summary after it ends
- `suggestions`: live reply suggestions for the consultant

They sit over the library modules of `anmei.ai` (gateway, context, providers, tokens, breaker,
extractive, masking, mcp_client, templating); see docs/architecture.md.
"""
