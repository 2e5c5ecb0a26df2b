"""The dependency cascade (issue 13): breaker states in, dependency decisions out."""
