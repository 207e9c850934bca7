"""`cerberus demo`: a bundled upstream MCP server and a ready tenant, to try the gateway at once."""
