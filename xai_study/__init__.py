"""xai-study: explain video deepfake detectors and run user studies comparing explainers."""

__version__ = "0.1.0"
