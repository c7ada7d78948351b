"""GPU session monitoring: every process on every GPU and MIG device, mapped to its pod.

- `sources`: NVML, `nvidia-smi` and recorded outputs behind one interface (`GpuSource`);
- `cgroup`, `procfs`, `kube`: host PID → container → pod;
- `collector`: one reading attributed into an immutable `Snapshot`;
- `metrics`, `exposition`, `exporter`: Prometheus `/metrics` and the node-exporter textfile;
- `inventory.local_gpus()`: the GPUs of this machine, for the local executor;
- `format`: `astrago gpu ls`.
See docs/gpu-monitoring.md.
"""
