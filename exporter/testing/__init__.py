"""Harnesses shared by the tests and the benchmarks: a real OTLP/gRPC trace receiver and a
worker process on a free loopback port. Not used by the worker itself."""
