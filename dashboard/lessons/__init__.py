"""The lessons rail: one guided experiment per lesson of the seed notes, verified live by the cluster."""
