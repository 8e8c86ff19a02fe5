"""Benchmark loaders: turn each public dataset format into plain ProblemRecords (stdlib only, no Django)."""

from pipeline.benchmarks.detect import detect_format
from pipeline.benchmarks.formats import FORMATS, FormatInfo
from pipeline.benchmarks.loading import load
from pipeline.benchmarks.records import DatasetFormatError, LoadedFile, ProblemRecord

__all__ = ["FORMATS", "DatasetFormatError", "FormatInfo", "LoadedFile", "ProblemRecord", "detect_format", "load"]
