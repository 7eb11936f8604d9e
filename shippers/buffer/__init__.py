"""Buffer: what the agent keeps on disk between receiving and the node's acknowledgement (file checkpoints, the spool)."""
