"""Stretto's kube-scheduler extender: filter (which answers the best-fitting nodes) and bind over extender v1 JSON.

Flow: `watch` feeds `cluster_cache` from the API server; `server` parses requests with `wire`,
`extender` asks the pure `decisions` for answers over a cache snapshot and, at bind time, books
devices in the cache before `binder` posts the Binding, which carries the devices as annotations.
"""
