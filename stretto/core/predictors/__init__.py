"""Predictors: each job's remaining work and time, from its profile and batch-size schedule."""
