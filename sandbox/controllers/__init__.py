"""The sandbox's controller-manager: level-triggered reconcile loops fed by informers.

Each controller watches what it needs through shared informers, puts the key of the object to
reconcile on a work queue, and a worker compares desired with actual state and writes the
difference through the API, so a missed event is repaired at the next pass.
"""
