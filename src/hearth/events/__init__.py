"""Moving events between Hearth's services: delivery to ARNs, and the lineage that stops loops."""
