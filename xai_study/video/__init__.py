"""Video decoding/encoding, face detection and tracking, and face crops."""

from xai_study.video.clip import FaceClip, extract_face_clip
from xai_study.video.faces import Face, detect_faces, get_mtcnn, track_faces
from xai_study.video.io import (
    VideoFrames,
    check_file,
    probe_codec,
    read_clip,
    read_video,
    write_video,
)

__all__ = [
    "Face",
    "FaceClip",
    "VideoFrames",
    "check_file",
    "detect_faces",
    "extract_face_clip",
    "get_mtcnn",
    "probe_codec",
    "read_clip",
    "read_video",
    "track_faces",
    "write_video",
]
