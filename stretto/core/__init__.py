"""Stretto's scheduling core: pure Python, no Kubernetes. The simulator and the operator both call it.

    plugins = build_plugins(RoundConfig(policy=PluginSpec(name="themis"), packer=PluginSpec(name="synergy-tune")))
    decision = run_round(snapshot, plugins)   # ClusterSnapshot in, RoundDecision out

Modules: `snapshots` (the round's input), `decisions` (each stage's output), `plugins` (the three
Protocols), `registries` (built-ins chosen by name), `rounds` (predict → share → pack),
`profiles` / `profile_loading` / `optimistic_profiling` / `job_model` / `profiling` /
`report_noise` (the job model, learned from noisy reports), `goodput` / `statistical_efficiency` /
`pollux_traces` (Pollux's goodput), `epoch_schedules`,
`builders` (test and example builders), and the `predictors`, `policies` and `packers` packages.
"""
