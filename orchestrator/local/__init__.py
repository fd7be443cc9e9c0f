"""Running a farm on this machine: what `up`, the demo, the tests and the benchmarks start.

| module | what |
|---|---|
| `farm` | `LocalFarm`: an embedded Redis, worker processes, the simulator's library |
| `redis_server` | the embedded Redis, and where a farm's broker is found (`broker_url`) |
| `watch` | Flower for the farm (basic auth off loopback) |
| `metrics_server` | the Prometheus exporter (`resolve_farm_*`) |
| `demo` | the demo farm's render and its check |
"""
