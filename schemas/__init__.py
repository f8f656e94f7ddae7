"""Event contracts: the shapes of the events on our topics and of the views built from them.

This package depends on nothing else in the project; everything else depends on it.
"""
