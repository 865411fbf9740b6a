"""Postprocess: polish, cite and check the answer (and streamed chunks), deliver it on the reply topic."""
