"""Policies: how many GPUs each job gets this round, as requests in priority order. One module each."""
