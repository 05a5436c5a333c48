"""The application around the pipeline: command line, HTTP service, metrics, traces, logs."""
