"""The runtimes Hearth ships (bootstraps) and the registry of the interpreters this host can run."""
