"""The monitor: what each workload does to its GPUs, sampled by the server and stored downsampled.

- `schemas`: the typed readings and answers (what other parts of the platform code against);
- `scripted`: a GPU source that plays a script (tests and demos drive simulated GPUs with it);
- `attribution`: which workload replica a GPU process belongs to;
- `sampler`: the background task that reads the source and stores samples; `rollup` downsamples them;
- `service`: `TelemetryService`, the read side (utilisation, series, per-GPU states, top)."""
