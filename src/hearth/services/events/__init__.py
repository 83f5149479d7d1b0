"""EventBridge-compatible event buses: rules with event patterns or schedules, and their targets."""
