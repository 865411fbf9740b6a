"""What stages agree on: the declared topology and the shape of a stage's logic."""
