"""STS: temporary credentials and caller identity."""
