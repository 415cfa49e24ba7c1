"""Phased fine-tuning: groups, losses, schedule, loop, checkpoints, resume."""
