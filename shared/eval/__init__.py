"""Golden-set evaluation: suites of cases run through the real pipeline, scored, and reported."""
