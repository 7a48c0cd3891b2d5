"""Stretto's GPU interceptor: the node daemon (Python) and the CUDA shim it steers (native/).

See README.md for the shim, the fake CUDA driver and the mock NVML.
"""
