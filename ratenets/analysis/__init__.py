"""Analyses that read a trained rate network from outside its model code (hooks, unit statistics)."""
