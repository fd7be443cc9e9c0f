"""The control plane of resolve-farm: settings, jobs, planning, routing and the CLI."""
