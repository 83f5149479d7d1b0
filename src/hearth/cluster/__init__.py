"""Several Hearth nodes on one database are one Hearth: membership, leases (hearth.cluster.membership)."""
