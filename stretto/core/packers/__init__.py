"""Packers: CPU and memory per worker and the node/GPU placement of the policy's shares."""
