// Package telemetry measures what the hardware behind an endpoint did during each measured
// window (a request's repeat, a serving level): energy, mean and peak power, SM and memory
// clocks, utilisation, peak memory and throttle reasons, as a measure.Telemetry the engine
// keeps on the sample.
//
// A GPU endpoint gets one long-lived `nvidia-smi --query-gpu=… --format=csv,noheader,nounits
// -lms N -i <uuid>` per GPU, started at the GPU's first window and streaming samples into a
// ring; a window is cut from the ring by its two timestamps, so starting and stopping a
// window costs no process start and nothing inside the window. Energy is the power samples
// integrated over the window (trapezoids, interpolated at the edges: SourcePowerIntegral).
// nvidia-smi has no query field for NVML's total-energy counter, so a fuze built with
// `-tags nvml` (cgo, NVIDIA's go-nvml, libnvidia-ml loaded at run time) reads that counter
// at the window's edges instead (SourceNVMLEnergy) and keeps the integral beside it. The
// default build stays pure Go and runs where there is no NVIDIA driver at all.
//
// A CPU endpoint reads the RAPL package counters under /sys/class/powercap at the window's
// edges when they are readable (usually only by root); otherwise its energy is n/a and the
// telemetry says why. Nothing is ever reported as 0 for "not measured".
package telemetry
