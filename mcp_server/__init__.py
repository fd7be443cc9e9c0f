"""The MCP face of the farm: tools and resources for agents, over stdio or streamable HTTP.

Talks to the orchestrator only (never to the bridge or the tasks).
"""
