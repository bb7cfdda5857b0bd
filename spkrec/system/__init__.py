"""Use a trained system on your own recordings: system bundles, speaker databases, enrol/verify/identify.

Public API::

    export_system(out, kind, ubm=..., extractor=..., backend=..., ...) -> System   (writes a bundle dir)
    load_system(path) -> System
    System.enroll({name: [audio, ...]}, db=None) -> SpeakerDB
    System.verify(db, name, audio, threshold=None, target_prior=None) -> VerifyResult
    System.identify(db, audio, top=5, open_set=False, ...) -> IdentifyResult
    System.load_db(path, create=False) -> SpeakerDB;  SpeakerDB.save(path), .remove(name), .names

``audio`` is a file path (WAV/FLAC/SPHERE..., any rate, mono or stereo) or a ``(samples, rate)`` pair.
"""
from spkrec.system.api import IdentifyResult, System, VerifyResult
from spkrec.system.bundle import FORMAT_VERSION, export_system, load_system, read_calibration
from spkrec.system.db import SpeakerDB

__all__ = ["FORMAT_VERSION", "IdentifyResult", "SpeakerDB", "System", "VerifyResult", "export_system",
           "load_system", "read_calibration"]
