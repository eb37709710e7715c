"""Reusable widgets: plots, the GPU panel, the log view. They draw what they are given; none reads the store."""
