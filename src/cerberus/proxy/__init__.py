"""The governance plane: the MCP proxy."""
