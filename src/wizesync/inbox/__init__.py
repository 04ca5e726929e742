"""The inbox: webhook routes, signature checks, the durable queue's worker and handler registry."""
