"""The Runtime API (2018-06-01) an execution environment's runtime talks to: `channel` holds the state
between the environment and the runtime, `server` speaks HTTP/1.1 on the environment's listener."""
