"""Sources: where lines, messages and samples enter the agent (files, syslog, metrics)."""
