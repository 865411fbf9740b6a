"""Postprocess: polish the answer and deliver it on the request's reply topic."""
