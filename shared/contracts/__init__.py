"""What stages agree on: the envelope and its errors, side-topic records, the topology, the Stage protocol."""
