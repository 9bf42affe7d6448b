"""Meters: cumulative readings of what a run spends (energy, FLOPs, samples, time, memory)."""
