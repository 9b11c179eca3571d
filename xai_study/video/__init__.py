"""Video decoding/encoding, face detection and tracking, and face crops."""

from xai_study.video.io import VideoFrames, check_file, probe_codec, read_video, write_video

__all__ = ["VideoFrames", "check_file", "probe_codec", "read_video", "write_video"]
