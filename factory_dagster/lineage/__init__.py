"""Lineage that exposes technical debt: the factory graph, debt rules, ML Test Score, column
lineage and OpenLineage events."""
