"""Authorization: AWS policy evaluation and the gateway's per-request check."""
