"""Grounding: conversation memory and prompt assembly from versioned templates."""
